//! Progress of a run on standard error: a bar (tasks done of total, rate, ETA) on a terminal, a plain
//! line at most once a second otherwise (a log, a pipe, CI).

use std::{
    io::IsTerminal,
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain progress line is written.
const LINE_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Progress {
    total: usize,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    /// Plain lines written: a run too short for one gets none at its end either.
    lines: usize,
}

impl Progress {
    pub(crate) fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total as u64),
                ProgressDrawTarget::stderr_with_hz(10),
            );
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40.green/white} {pos}/{len} tasks · {per_sec} · ETA {eta}",
                )
                .expect("a valid template"),
            );
            bar
        });
        let now = Instant::now();
        Progress {
            total,
            bar,
            started: now,
            last_line: now,
            lines: 0,
        }
    }

    pub(crate) fn update(&mut self, done: usize) {
        match &self.bar {
            Some(bar) => bar.set_position(done as u64),
            None if self.last_line.elapsed() >= LINE_EVERY => {
                self.last_line = Instant::now();
                self.lines += 1;
                self.line(done);
            }
            None => {}
        }
    }

    fn line(&self, done: usize) {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "progress: {done}/{} tasks ({:.0}%), {:.0} tasks/s",
            self.total,
            100.0 * done as f64 / self.total.max(1) as f64,
            done as f64 / seconds
        );
    }

    pub(crate) fn finish(&mut self, done: usize) {
        match self.bar.take() {
            Some(bar) => {
                bar.set_position(done as u64);
                bar.finish_and_clear();
            }
            None if self.lines > 0 => self.line(done),
            None => {}
        }
    }
}
