//! A picture of a run: a timeline (Gantt chart) of its attempts as an SVG image — one lane per worker, a
//! bar per attempt coloured by how it ended, the critical path outlined.

use std::{fmt::Write as _, path::Path, time::Duration};

use crate::{AttemptOutcome, AttemptRecord, RunId, RunReport, Workflow};

/// Why a timeline cannot be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TimelineError {
    /// The report is not of this workflow (another name or other nodes).
    #[error(
        "the report of run {run} is of workflow `{report}` ({report_nodes} nodes), not of `{workflow}` ({workflow_nodes} nodes)"
    )]
    OtherWorkflow {
        /// The run.
        run: RunId,
        /// The workflow given.
        workflow: String,
        /// Its node count.
        workflow_nodes: usize,
        /// The report's workflow.
        report: String,
        /// The report's node count.
        report_nodes: usize,
    },
    /// Nodes ran but the run did not record its attempts.
    #[error(
        "the report of run {run} holds no attempts although {ran} nodes ran: run it with RunOptions::record_attempts(true)"
    )]
    NoAttempts {
        /// The run.
        run: RunId,
        /// Nodes with at least one attempt.
        ran: usize,
    },
    /// The image could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The timeline of one run: its attempts on a time axis, a lane per worker (and one for attempts ended
/// off the workers), a bar per attempt coloured by its outcome (completed green, retried orange, failed
/// red, timed out purple, cancelled grey; an async node's bar is lighter, since it held its worker only
/// while polled), and the run's critical path — the chain of nodes, each the last of its dependencies
/// to end, that ends with the last node to end — outlined in black. Hovering a bar shows the node, the
/// attempt, its worker, start, duration and outcome.
///
/// The run must record its attempts ([`RunOptions::record_attempts`](crate::RunOptions::record_attempts)).
///
/// ```
/// use flowmem_engine::{Executor, RunOptions, Timeline, Workflow};
///
/// let mut b = Workflow::builder("etl");
/// b.node("extract", |_| Ok(()));
/// b.node("transform", |_| Ok(())).after(["extract"]);
/// b.node("audit", |_| Ok(())).after(["extract"]);
/// b.node("load", |_| Ok(())).after(["transform", "audit"]);
/// let workflow = b.build()?;
/// let report = Executor::new(2).run_with(&workflow, RunOptions::new().record_attempts(true));
///
/// let timeline = Timeline::new(&workflow, &report)?;
/// let path = timeline.critical_path();
/// assert_eq!((path.first(), path.last()), (Some(&"extract"), Some(&"load")));
/// let svg = timeline.to_svg();
/// assert_eq!(svg.matches("class=\"attempt").count(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Timeline<'a> {
    report: &'a RunReport,
    /// The critical path, node indices in run order.
    critical: Vec<usize>,
}

impl<'a> Timeline<'a> {
    /// The timeline of `report`, a run of `workflow`.
    ///
    /// # Errors
    /// [`TimelineError::OtherWorkflow`] if the report is of another workflow;
    /// [`TimelineError::NoAttempts`] if nodes ran but the run did not record its attempts.
    pub fn new(workflow: &'a Workflow, report: &'a RunReport) -> Result<Self, TimelineError> {
        let same = workflow.name() == &*report.workflow
            && workflow.len() == report.nodes.len()
            && workflow
                .nodes()
                .zip(&report.nodes)
                .all(|(name, node)| name == &*node.name);
        if !same {
            return Err(TimelineError::OtherWorkflow {
                run: report.id,
                workflow: workflow.name().to_string(),
                workflow_nodes: workflow.len(),
                report: report.workflow.to_string(),
                report_nodes: report.nodes.len(),
            });
        }
        let ran = report.nodes.iter().filter(|n| n.attempts > 0).count();
        if report.attempts.is_empty() && ran > 0 {
            return Err(TimelineError::NoAttempts {
                run: report.id,
                ran,
            });
        }
        let critical = critical_path(workflow, report);
        Ok(Timeline { report, critical })
    }

    /// The critical path: the node that ended last, the dependency of it that ended last, and so on back
    /// to a node none of whose dependencies ran in this run — in run order. Empty if nothing ran.
    pub fn critical_path(&self) -> Vec<&'a str> {
        self.critical
            .iter()
            .map(|&i| &*self.report.nodes[i].name)
            .collect()
    }

    /// The time the critical path's nodes spent in their attempts (retries included), and the run's
    /// duration: how much of the run the path explains.
    pub fn critical_time(&self) -> (Duration, Duration) {
        let on_path: Duration = self
            .report
            .attempts
            .iter()
            .filter(|a| self.critical.contains(&a.node))
            .map(AttemptRecord::duration)
            .sum();
        (on_path, self.span())
    }

    /// The run's span on the time axis: its duration, or the last attempt's end if later.
    fn span(&self) -> Duration {
        self.report
            .attempts
            .iter()
            .map(|a| a.end)
            .max()
            .unwrap_or_default()
            .max(self.report.duration)
    }

    /// Writes the SVG image to `path`.
    ///
    /// # Errors
    /// [`TimelineError::Io`] naming the file.
    pub fn write_svg(&self, path: impl AsRef<Path>) -> Result<(), TimelineError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_svg()).map_err(|source| TimelineError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The SVG image.
    pub fn to_svg(&self) -> String {
        Svg::new(self).render()
    }
}

/// The critical path, node indices in run order.
fn critical_path(workflow: &Workflow, report: &RunReport) -> Vec<usize> {
    let n = report.nodes.len();
    let mut end: Vec<Option<Duration>> = vec![None; n];
    for a in &report.attempts {
        let e = &mut end[a.node];
        *e = Some(e.map_or(a.end, |e| e.max(a.end)));
    }
    let latest = |candidates: &mut dyn Iterator<Item = usize>| {
        candidates
            .filter_map(|i| end[i].map(|e| (e, i)))
            .max()
            .map(|(_, i)| i)
    };
    let mut path = Vec::new();
    let mut current = latest(&mut (0..n));
    while let Some(i) = current {
        path.push(i);
        current = latest(&mut workflow.graph.deps(i as u32).iter().map(|d| *d as usize));
    }
    path.reverse();
    path
}

const WIDTH: f64 = 1200.0;
const LABELS: f64 = 120.0;
const RIGHT: f64 = 30.0;
const HEADER: f64 = 64.0;
const ROW: f64 = 16.0;
const BAR: f64 = 12.0;
const LANE_GAP: f64 = 10.0;
/// Rows a lane gets for overlapping bars (async attempts) before bars share a row.
const MAX_ROWS: usize = 24;

/// Where a bar goes: a worker's lane (its sync attempts, which it runs one at a time), the lane of async
/// attempts (which hold no worker while they wait, so they overlap), or the lane of attempts ended off
/// the workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LaneKey {
    Worker(usize),
    Async,
    Off,
}

impl LaneKey {
    fn of(a: &AttemptRecord) -> Self {
        match (a.is_async, a.worker) {
            (true, _) => LaneKey::Async,
            (false, Some(w)) => LaneKey::Worker(w),
            (false, None) => LaneKey::Off,
        }
    }

    fn label(self) -> String {
        match self {
            LaneKey::Worker(w) => format!("worker {w}"),
            LaneKey::Async => "async nodes".into(),
            LaneKey::Off => "off workers".into(),
        }
    }
}

/// A lane and its attempts, each with its row.
struct Lane<'r> {
    key: LaneKey,
    rows: usize,
    bars: Vec<(&'r AttemptRecord, usize)>,
}

struct Svg<'t, 'a> {
    timeline: &'t Timeline<'a>,
    lanes: Vec<Lane<'a>>,
    span: Duration,
    out: String,
}

impl<'t, 'a> Svg<'t, 'a> {
    fn new(timeline: &'t Timeline<'a>) -> Self {
        let mut keys: Vec<LaneKey> = timeline.report.attempts.iter().map(LaneKey::of).collect();
        // Workers in order, then the async lane, then the off-worker lane.
        keys.sort();
        keys.dedup();
        let lanes = keys
            .into_iter()
            .map(|key| {
                let mut attempts: Vec<&AttemptRecord> = timeline
                    .report
                    .attempts
                    .iter()
                    .filter(|a| LaneKey::of(a) == key)
                    .collect();
                attempts.sort_by_key(|a| (a.start, a.end));
                // Greedy interval partitioning: each bar on the first row free at its start.
                let mut row_ends: Vec<Duration> = Vec::new();
                let bars = attempts
                    .into_iter()
                    .map(|a| {
                        let row = match row_ends.iter().position(|e| *e <= a.start) {
                            Some(r) => r,
                            None if row_ends.len() < MAX_ROWS => {
                                row_ends.push(Duration::ZERO);
                                row_ends.len() - 1
                            }
                            None => (0..row_ends.len())
                                .min_by_key(|r| row_ends[*r])
                                .unwrap_or(0),
                        };
                        row_ends[row] = row_ends[row].max(a.end);
                        (a, row)
                    })
                    .collect();
                Lane {
                    key,
                    rows: row_ends.len().max(1),
                    bars,
                }
            })
            .collect();
        Svg {
            span: timeline.span().max(Duration::from_nanos(1)),
            timeline,
            lanes,
            out: String::new(),
        }
    }

    fn x(&self, t: Duration) -> f64 {
        LABELS + (WIDTH - LABELS - RIGHT) * (t.as_secs_f64() / self.span.as_secs_f64())
    }

    fn render(mut self) -> String {
        let lanes_height: f64 = self
            .lanes
            .iter()
            .map(|l| l.rows as f64 * ROW + LANE_GAP)
            .sum::<f64>()
            .max(ROW + LANE_GAP);
        let axis_y = HEADER + lanes_height;
        let height = axis_y + 70.0;
        let report = self.timeline.report;
        let _ = write!(
            self.out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="20" font-size="15" font-weight="bold">{}</text>
"#,
            escape(&format!(
                "{} · run {} · {:?} · {} · {} nodes, {} attempts",
                report.workflow,
                report.id,
                report.status,
                human(report.duration),
                report.nodes.len(),
                report.attempts.len()
            ))
        );
        let path = self.timeline.critical_path();
        let (on_path, span) = self.timeline.critical_time();
        let shown = if path.len() <= 8 {
            path.join(" → ")
        } else {
            format!(
                "{} → … ({} more) … → {}",
                path[..4].join(" → "),
                path.len() - 6,
                path[path.len() - 2..].join(" → ")
            )
        };
        let _ = writeln!(
            self.out,
            r#"<text x="10" y="40">{}</text>"#,
            escape(&format!(
                "critical path ({} nodes, {} of the run's {} in their attempts): {shown}",
                path.len(),
                human(on_path),
                human(span)
            ))
        );
        self.lanes_and_bars(axis_y);
        self.axis(axis_y);
        self.legend(axis_y + 45.0);
        self.out.push_str("</svg>\n");
        self.out
    }

    /// The lanes, the time grid over them, and the bars over that.
    fn lanes_and_bars(&mut self, axis_y: f64) {
        let mut y = HEADER;
        let lanes = std::mem::take(&mut self.lanes);
        for (k, lane) in lanes.iter().enumerate() {
            let h = lane.rows as f64 * ROW;
            let shade = if k % 2 == 0 { "#f4f4f4" } else { "#fafafa" };
            let label = lane.key.label();
            let _ = writeln!(
                self.out,
                r#"<rect class="lane" x="{LABELS}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{shade}"/>
<text x="10" y="{:.1}">{label}</text>"#,
                WIDTH - LABELS - RIGHT,
                y + h / 2.0 + 4.0
            );
            y += h + LANE_GAP;
        }
        self.grid(axis_y);
        y = HEADER;
        for lane in &lanes {
            for (a, row) in &lane.bars {
                self.bar(a, y + *row as f64 * ROW + (ROW - BAR) / 2.0);
            }
            y += lane.rows as f64 * ROW + LANE_GAP;
        }
        self.lanes = lanes;
    }

    /// The ticks' times, a step apart from zero.
    fn ticks(&self) -> impl Iterator<Item = Duration> + use<> {
        let step = tick_step(self.span);
        let span = self.span;
        std::iter::successors(Some(Duration::ZERO), move |t| {
            t.checked_add(step).filter(|t| *t <= span)
        })
    }

    fn grid(&mut self, y: f64) {
        for t in self.ticks() {
            let x = self.x(t);
            let _ = writeln!(
                self.out,
                r##"<line x1="{x:.1}" y1="{HEADER}" x2="{x:.1}" y2="{y}" stroke="#ccc" stroke-dasharray="2,3"/>"##
            );
        }
    }

    fn bar(&mut self, a: &AttemptRecord, y: f64) {
        let x0 = self.x(a.start);
        let width = (self.x(a.end) - x0).max(0.5);
        let colour = colour(a.outcome);
        let critical = self.timeline.critical.contains(&a.node);
        let stroke = if critical {
            r##" stroke="#000" stroke-width="1.5""##
        } else {
            r##" stroke="#fff" stroke-width="0.5""##
        };
        let opacity = if a.is_async {
            r#" fill-opacity="0.55""#
        } else {
            ""
        };
        let name = &self.timeline.report.nodes[a.node].name;
        let worker = a
            .worker
            .map_or_else(|| "off workers".to_string(), |w| format!("worker {w}"));
        let tip = format!(
            "{name} · attempt {} · {worker} · from {} for {} · {}{}{}",
            a.attempt,
            human(a.start),
            human(a.duration()),
            a.outcome.label(),
            if a.is_async { " · async" } else { "" },
            if critical { " · critical path" } else { "" }
        );
        let class = if critical {
            "attempt critical"
        } else {
            "attempt"
        };
        let _ = writeln!(
            self.out,
            r#"<rect class="{class}" x="{x0:.2}" y="{y:.1}" width="{width:.2}" height="{BAR}" fill="{colour}"{opacity}{stroke}><title>{}</title></rect>"#,
            escape(&tip)
        );
        // The node's name on its bar, where it fits (about 6 px a character at this size).
        if width >= 6.0 * name.chars().count() as f64 + 6.0 {
            let _ = writeln!(
                self.out,
                r##"<text class="label" x="{:.2}" y="{:.1}" font-size="10" fill="#fff" pointer-events="none">{}</text>"##,
                x0 + 3.0,
                y + BAR - 2.5,
                escape(name)
            );
        }
    }

    fn axis(&mut self, y: f64) {
        let _ = writeln!(
            self.out,
            r##"<line x1="{LABELS}" y1="{y}" x2="{}" y2="{y}" stroke="#333"/>"##,
            WIDTH - RIGHT
        );
        for t in self.ticks() {
            let x = self.x(t);
            let _ = writeln!(
                self.out,
                r##"<line x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{:.1}" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                y + 5.0,
                y + 18.0,
                human(t)
            );
        }
    }

    fn legend(&mut self, y: f64) {
        let mut x = LABELS;
        let entries = [
            ("completed", colour(AttemptOutcome::Completed), ""),
            (
                "retried",
                colour(AttemptOutcome::Retried(crate::ActionErrorKind::Failed)),
                "",
            ),
            (
                "failed",
                colour(AttemptOutcome::Failed(crate::ActionErrorKind::Failed)),
                "",
            ),
            (
                "timed out",
                colour(AttemptOutcome::Failed(crate::ActionErrorKind::TimedOut)),
                "",
            ),
            ("cancelled", colour(AttemptOutcome::Cancelled), ""),
            (
                "async (lighter)",
                colour(AttemptOutcome::Completed),
                r#" fill-opacity="0.55""#,
            ),
            (
                "critical path (outlined)",
                "white",
                r##" stroke="#000" stroke-width="1.5""##,
            ),
        ];
        for (label, fill, extra) in entries {
            let _ = writeln!(
                self.out,
                r#"<rect x="{x}" y="{:.1}" width="14" height="{BAR}" fill="{fill}"{extra}/><text x="{}" y="{:.1}">{label}</text>"#,
                y - BAR + 2.0,
                x + 18.0,
                y
            );
            x += 26.0 + 7.0 * label.len() as f64;
        }
    }
}

fn colour(outcome: AttemptOutcome) -> &'static str {
    match outcome.label() {
        "completed" => "#43a047",
        "retried" => "#fb8c00",
        "failed" => "#e53935",
        "timed out" => "#8e24aa",
        _ => "#9e9e9e",
    }
}

/// A tick step of 1, 2 or 5 × 10^k nanoseconds giving 5 to 12 ticks over `span`.
fn tick_step(span: Duration) -> Duration {
    let target = (span.as_nanos() / 8).max(1);
    let mut unit: u128 = 1;
    loop {
        for m in [1, 2, 5] {
            if m * unit >= target {
                return Duration::from_nanos((m * unit).min(u64::MAX as u128) as u64);
            }
        }
        unit *= 10;
    }
}

/// A duration as a person reads it: `850 ns`, `12.5 µs`, `3.20 ms`, `1.25 s`.
pub(crate) fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", d.as_secs_f64()),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_one_two_five() {
        assert_eq!(
            tick_step(Duration::from_millis(80)),
            Duration::from_millis(10)
        );
        assert_eq!(
            tick_step(Duration::from_millis(15)),
            Duration::from_millis(2)
        );
        assert_eq!(
            tick_step(Duration::from_micros(37)),
            Duration::from_micros(5)
        );
        assert_eq!(tick_step(Duration::from_nanos(3)), Duration::from_nanos(1));
    }

    #[test]
    fn durations_read_as_a_person_reads_them() {
        assert_eq!(human(Duration::from_nanos(850)), "850 ns");
        assert_eq!(human(Duration::from_nanos(12_500)), "12.5 µs");
        assert_eq!(human(Duration::from_micros(3_200)), "3.20 ms");
        assert_eq!(human(Duration::from_millis(1_250)), "1.25 s");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    }
}
