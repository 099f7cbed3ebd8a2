//! Collecting criterion's estimates and writing `report.json` and `report.md`.

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use serde::Serialize;
use serde_json::Value;

use crate::{Result, machine::Machine, targets::TargetResult};

/// One benchmark of one run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BenchResult {
    /// The global allocator of the run: `system`, `jemalloc` or `mimalloc`.
    pub(crate) allocator: String,
    /// The bench file, named after the layer it measures.
    pub(crate) layer: String,
    /// `group/function`.
    pub(crate) id: String,
    /// Criterion's median time of one iteration (the figure the report uses: robust to the outlier samples
    /// a shared virtual machine produces).
    pub(crate) median_ns: f64,
    /// Criterion's mean, for reference.
    pub(crate) mean_ns: f64,
    pub(crate) std_dev_ns: f64,
    /// Elements one iteration processes (criterion's `Throughput::Elements`, else 1).
    pub(crate) elements: u64,
    /// Other processes' average CPU use (cores) while criterion measured it, where `/proc` tells; above
    /// `disturbance::DISTURBED_CORES` the figure is disturbed.
    pub(crate) others_cores: Option<f64>,
    /// `median_ns / elements`.
    pub(crate) ns_per_element: f64,
}

/// A count or size from `benches/src/bin/counts.rs` (measured with `Tracking` as the global allocator).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CountResult {
    pub(crate) allocator: String,
    pub(crate) layer: String,
    pub(crate) id: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
}

/// One JSON line printed by a measuring binary (`counts` or `paired`), its fields read with errors that
/// quote the line.
struct JsonLine<'a> {
    binary: &'static str,
    line: &'a str,
    value: Value,
}

impl<'a> JsonLine<'a> {
    /// The non-empty lines of `text`, parsed.
    fn all(binary: &'static str, text: &'a str) -> Result<Vec<Self>> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .map(|value| JsonLine {
                        binary,
                        line,
                        value,
                    })
                    .map_err(|e| format!("{binary}: `{line}`: {e}").into())
            })
            .collect()
    }

    fn missing(&self, key: &str) -> String {
        format!("{}: `{}` has no {key}", self.binary, self.line)
    }

    fn text(&self, key: &str) -> Result<String> {
        Ok(self.value[key]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.missing(key))?)
    }

    fn number(&self, key: &str) -> Result<f64> {
        Ok(self.value[key].as_f64().ok_or_else(|| self.missing(key))?)
    }
}

/// Parses the JSON lines the counts binary prints.
pub(crate) fn parse_counts(text: &str, allocator: &str) -> Result<Vec<CountResult>> {
    JsonLine::all("counts", text)?
        .into_iter()
        .map(|l| {
            Ok(CountResult {
                allocator: allocator.to_string(),
                layer: l.text("layer")?,
                id: l.text("id")?,
                value: l.number("value")?,
                unit: l.text("unit")?,
            })
        })
        .collect()
}

/// A ratio from alternating runs of two sides (`benches/src/bin/paired.rs`, `flowmem_benches::paired`) under
/// one global allocator: the median of the rounds' ratios and its quartiles.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PairedResult {
    /// The global allocator of the paired binary's build.
    pub(crate) allocator: String,
    pub(crate) layer: String,
    pub(crate) id: String,
    pub(crate) median: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) rounds: u64,
    /// The two runs of the median round, in milliseconds: the first side's (the ratio's denominator as a
    /// time) and the second's; which side moved when a ratio moves between sittings.
    pub(crate) first_ms: f64,
    pub(crate) second_ms: f64,
    pub(crate) what: String,
    /// Other processes' average CPU use (cores) while the rounds ran, where `/proc` tells; above
    /// `disturbance::DISTURBED_CORES` the ratio is disturbed.
    pub(crate) others_cores: Option<f64>,
}

/// Parses the JSON lines the paired binary prints.
pub(crate) fn parse_paired(text: &str) -> Result<Vec<PairedResult>> {
    JsonLine::all("paired", text)?
        .into_iter()
        .map(|l| {
            Ok(PairedResult {
                allocator: l.text("allocator")?,
                layer: l.text("layer")?,
                id: l.text("id")?,
                median: l.number("median")?,
                low: l.number("low")?,
                high: l.number("high")?,
                rounds: l.value["rounds"]
                    .as_u64()
                    .ok_or_else(|| l.missing("rounds"))?,
                first_ms: l.number("first_ms")?,
                second_ms: l.number("second_ms")?,
                what: l.text("what")?,
                // Filled in by whoever watched the run (`bench::measure_paired`).
                others_cores: None,
            })
        })
        .collect()
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) quick: bool,
    pub(crate) filter: Option<String>,
    pub(crate) allocators: Vec<String>,
    pub(crate) targets: Vec<TargetResult>,
    pub(crate) benches: Vec<BenchResult>,
    pub(crate) counts: Vec<CountResult>,
    pub(crate) paired: Vec<PairedResult>,
}

/// Reads every `new/benchmark.json` + `new/estimates.json` pair under `dir` (a `CRITERION_HOME`).
pub(crate) fn collect(dir: &Path, allocator: &str, layer: &str) -> Result<Vec<BenchResult>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    if let Some(r) = read_one(&path, allocator, layer)? {
                        found.push(r);
                    }
                } else {
                    stack.push(path);
                }
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

fn read_json(path: PathBuf) -> Result<Value> {
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?)
}

fn read_one(new: &Path, allocator: &str, layer: &str) -> Result<Option<BenchResult>> {
    if !new.join("benchmark.json").exists() || !new.join("estimates.json").exists() {
        return Ok(None);
    }
    let bench = read_json(new.join("benchmark.json"))?;
    let est = read_json(new.join("estimates.json"))?;
    let id = bench["full_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no full_id", new.display()))?
        .to_string();
    let estimate = |name: &str| {
        est[name]["point_estimate"]
            .as_f64()
            .ok_or_else(|| format!("{}: no {name} estimate", new.display()))
    };
    let median_ns = estimate("median")?;
    let elements = bench["throughput"]["Elements"].as_u64().unwrap_or(1).max(1);
    Ok(Some(BenchResult {
        allocator: allocator.to_string(),
        layer: layer.to_string(),
        id,
        median_ns,
        mean_ns: estimate("mean")?,
        std_dev_ns: est["std_dev"]["point_estimate"].as_f64().unwrap_or(0.0),
        elements,
        ns_per_element: median_ns / elements as f64,
        others_cores: None,
    }))
}

/// `1.23 ns`, `4.56 µs`, ...
pub(crate) fn format_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.2} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Elements per second: `813 M/s`.
fn format_rate(ns_per_element: f64) -> String {
    let per_sec = 1e9 / ns_per_element;
    if per_sec >= 1e9 {
        format!("{:.2} G/s", per_sec / 1e9)
    } else if per_sec >= 1e6 {
        format!("{:.1} M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} K/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.1} /s")
    }
}

fn target_table(out: &mut String, targets: &[&TargetResult]) {
    out.push_str("| id | what | ratio | goal | pass |\n|---|---|---|---|---|\n");
    for t in targets {
        let (ratio, pass) = match (t.ratio, t.pass) {
            (Some(r), Some(p)) => (
                format!("{r:.3}"),
                if p { "yes" } else { "**no**" }.to_string(),
            ),
            (Some(r), None) => (
                format!("{r:.3}"),
                t.disturbed.map_or("–".to_string(), |c| {
                    format!("disturbed (others used {c:.2} cores while it was measured, twice)")
                }),
            ),
            _ => ("not measured".to_string(), "–".to_string()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {ratio} | {} | {pass} |",
            t.id, t.what, t.goal
        );
    }
}

impl BenchResult {
    /// Whether other processes took so much CPU while it was measured that the figure cannot be trusted.
    pub(crate) fn disturbed(&self) -> bool {
        crate::disturbance::is_disturbed(self.others_cores)
    }
}

impl PairedResult {
    /// Whether other processes took so much CPU while its rounds ran that the ratio cannot be trusted.
    pub(crate) fn disturbed(&self) -> bool {
        crate::disturbance::is_disturbed(self.others_cores)
    }
}

impl Report {
    /// The layers that have results, in bench-file order of first appearance.
    pub(crate) fn layers(&self) -> Vec<String> {
        let mut layers: Vec<String> = Vec::new();
        let named = self
            .benches
            .iter()
            .map(|b| &b.layer)
            .chain(self.counts.iter().map(|c| &c.layer))
            .chain(self.paired.iter().map(|p| &p.layer));
        for layer in named {
            if !layers.contains(layer) {
                layers.push(layer.clone());
            }
        }
        layers
    }

    /// The Markdown report; `charts` adds each layer's SVG chart (for the copy under `target/`).
    pub(crate) fn markdown(&self, charts: bool) -> String {
        let m = &self.machine;
        let mut out = String::new();
        out.push_str("# flowmem benchmark report\n\n");
        let _ = writeln!(
            out,
            "Measured on **{}** ({} cores), {}, {}, commit `{}`, {}.  ",
            m.cpu, m.cores, m.os, m.rustc, m.commit, m.date
        );
        let _ = writeln!(
            out,
            "Mode: {}. Global allocators: {}.{}\n",
            if self.quick {
                "quick tour (`--quick`: short measurements, noisier figures)"
            } else {
                "full run"
            },
            self.allocators.join(", "),
            self.filter
                .as_ref()
                .map(|f| format!(" Filter: `{f}`."))
                .unwrap_or_default()
        );
        if self.allocators.iter().any(|a| a == crate::targets::NATIVE) {
            out.push_str(
                "The `native` column is `--native`: the system allocator, the engine bench's `simd_*` \
                 groups built with `-C target-cpu=native` (targets E5.native).\n\n",
            );
        }
        out.push_str(
            "Each figure is criterion's median time per element (lower is better; the median resists the \
             outlier samples of a shared virtual machine better than the mean, which report.json also \
             holds) and the throughput it gives. Each target divides two figures of this same run. \
             Absolute times from a shared virtual machine are not facts to quote; the ratios are what \
             the targets judge. While each benchmark is measured, the CPU time other processes take \
             (`/proc/stat` less this run's own processes) is watched: a figure taken while others \
             used more than 0.15 of a core is measured again, and a target whose figure stays so is \
             marked *disturbed* and not judged.\n\n",
        );
        out.push_str("## Targets\n\n");
        target_table(&mut out, &self.targets.iter().collect::<Vec<_>>());
        for layer in self.layers() {
            let _ = writeln!(out, "\n## {layer}\n");
            out.push_str("| benchmark |");
            for a in &self.allocators {
                let _ = write!(out, " {a} |");
            }
            out.push_str("\n|---|");
            out.push_str(&"---|".repeat(self.allocators.len()));
            out.push('\n');
            let mut ids: Vec<&str> = Vec::new();
            for b in self.benches.iter().filter(|b| b.layer == layer) {
                if !ids.contains(&b.id.as_str()) {
                    ids.push(&b.id);
                }
            }
            for id in ids {
                let _ = write!(out, "| `{id}` |");
                for a in &self.allocators {
                    match self
                        .benches
                        .iter()
                        .find(|b| b.layer == layer && b.id == id && b.allocator == *a)
                    {
                        Some(b) => {
                            let _ = write!(
                                out,
                                " {} ({}) |",
                                format_time(b.ns_per_element),
                                format_rate(b.ns_per_element)
                            );
                        }
                        None => out.push_str(" – |"),
                    }
                }
                out.push('\n');
            }
            let counts: Vec<_> = self.counts.iter().filter(|c| c.layer == layer).collect();
            if !counts.is_empty() {
                out.push_str("\nCounts (measured with `Tracking` as the global allocator):\n\n");
                out.push_str("| measurement | value | unit |\n|---|---|---|\n");
                for c in counts {
                    let _ = writeln!(out, "| `{}` | {:.3} | {} |", c.id, c.value, c.unit);
                }
            }
            let paired: Vec<_> = self.paired.iter().filter(|p| p.layer == layer).collect();
            if !paired.is_empty() {
                out.push_str(
                    "\nRatios from alternating runs (the two sides run back to back, round after round: \
                     the median of the rounds' ratios, and its quartiles; a run: the times of the two runs \
                     of the median round, the side that goes first in even rounds, then the other (a \
                     time ratio is the second over the first, a throughput ratio the first over the \
                     second); others' CPU: the cores other processes used on average while the rounds \
                     ran):\n\n",
                );
                out.push_str(
                    "| measurement | allocator | median | quartiles | rounds | a run (ms) | others' CPU | what |\n|---|---|---|---|---|---|---|---|\n",
                );
                for p in paired {
                    let others = p
                        .others_cores
                        .map_or("–".to_string(), |c| format!("{c:.2}"));
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {:.3} | {:.3}–{:.3} | {} | {:.2} / {:.2} | {others} | {} |",
                        p.id,
                        p.allocator,
                        p.median,
                        p.low,
                        p.high,
                        p.rounds,
                        p.first_ms,
                        p.second_ms,
                        p.what
                    );
                }
            }
            let layer_targets: Vec<_> = self.targets.iter().filter(|t| t.layer == layer).collect();
            if !layer_targets.is_empty() {
                out.push_str("\nTargets of this layer:\n\n");
                target_table(&mut out, &layer_targets);
            }
            if charts {
                let _ = writeln!(out, "\n![{layer}](charts/{layer}.svg)");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_output() {
        let dir = std::env::temp_dir().join(format!("xtask-report-{}", std::process::id()));
        let new = dir.join("false_sharing/padded/new");
        fs::create_dir_all(&new).unwrap();
        fs::write(
            new.join("benchmark.json"),
            r#"{"group_id":"false_sharing","function_id":"padded","value_str":null,
               "throughput":{"Elements":2},"full_id":"false_sharing/padded","directory_name":"x","title":"x"}"#,
        )
        .unwrap();
        fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":12.0},"median":{"point_estimate":10.0},"std_dev":{"point_estimate":1.0}}"#,
        )
        .unwrap();
        // A stale "base" directory is not a result.
        fs::create_dir_all(dir.join("false_sharing/padded/base")).unwrap();
        let found = collect(&dir, "system", "alloc").unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "false_sharing/padded");
        assert_eq!((found[0].elements, found[0].ns_per_element), (2, 5.0));
    }

    #[test]
    fn parses_count_lines() {
        let counts = parse_counts(
            "{\"id\":\"pool_memory/flowmem\",\"layer\":\"intern\",\"unit\":\"b\",\"value\":1.5}\n\n",
            "system",
        )
        .unwrap();
        assert_eq!(counts.len(), 1);
        assert_eq!(
            (counts[0].id.as_str(), counts[0].value),
            ("pool_memory/flowmem", 1.5)
        );
        assert!(parse_counts("{\"id\":\"x\"}", "system").is_err());
    }

    #[test]
    fn parses_paired_lines() {
        let paired = parse_paired(
            "{\"allocator\":\"system\",\"layer\":\"map\",\"id\":\"paired/exchange/scc_2t\",\"median\":0.9,\"low\":0.8,\"high\":1.1,\"rounds\":9,\"first_ms\":20.5,\"second_ms\":18.25,\"what\":\"w\"}\n",
        )
        .unwrap();
        assert_eq!(paired.len(), 1);
        assert_eq!(
            (paired[0].id.as_str(), paired[0].median, paired[0].rounds),
            ("paired/exchange/scc_2t", 0.9, 9)
        );
        assert_eq!((paired[0].first_ms, paired[0].second_ms), (20.5, 18.25));
        assert!(parse_paired("{\"id\":\"x\",\"layer\":\"map\"}").is_err());
    }

    #[test]
    fn time_and_rate_formats() {
        assert_eq!(format_time(1.234), "1.23 ns");
        assert_eq!(format_time(12_345.0), "12.35 µs");
        assert_eq!(format_rate(1.0), "1.00 G/s");
        assert_eq!(format_rate(2.0), "500.0 M/s");
    }
}
