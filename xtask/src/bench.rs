//! `cargo xtask bench`: build and run the criterion benches of `benches/`, collect their estimates, and
//! write `target/flowmem-bench/report.json`, `report.md` and `charts/*.svg`; a full run refreshes
//! `docs/benchmarks.md`.

use std::{
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

use crate::{
    Result, cargo, charts, disturbance,
    machine::Machine,
    report::{self, Report},
    targets,
};

const ALLOCATORS: &[&str] = &["system", "jemalloc", "mimalloc"];
const OUT: &str = "target/flowmem-bench";
const EXE: &str = std::env::consts::EXE_SUFFIX;

/// The options of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// A short tour: fewer samples and smaller workloads (what CI runs).
    #[arg(long)]
    quick: bool,
    /// Only the benchmarks (and counts) whose id matches REGEX; a filtered run does not refresh
    /// docs/benchmarks.md.
    #[arg(long, value_name = "REGEX")]
    filter: Option<String>,
    /// The global allocator the benches are built against; `all` runs them under each, side by side.
    #[arg(long, value_enum, default_value_t = AllocatorChoice::System)]
    allocator: AllocatorChoice,
    /// Also build the E5 helpers' benches with `-C target-cpu=native` and run them (E5.native; a full
    /// run always does).
    #[arg(long)]
    native: bool,
}

/// `--allocator`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AllocatorChoice {
    /// The system allocator (glibc malloc).
    System,
    /// jemalloc (built from C source).
    Jemalloc,
    /// mimalloc (built from C source).
    Mimalloc,
    /// Each of the three.
    All,
}

impl Options {
    /// The allocators to run under, in `ALLOCATORS` order.
    fn allocators(&self) -> Vec<String> {
        let chosen = match self.allocator {
            AllocatorChoice::System => "system",
            AllocatorChoice::Jemalloc => "jemalloc",
            AllocatorChoice::Mimalloc => "mimalloc",
            AllocatorChoice::All => return ALLOCATORS.iter().map(|s| s.to_string()).collect(),
        };
        vec![chosen.to_string()]
    }
}

/// The `[[bench]]` names of `benches/Cargo.toml`, one per layer.
fn bench_files() -> Result<Vec<String>> {
    let manifest =
        fs::read_to_string("benches/Cargo.toml").map_err(crate::io_at("benches/Cargo.toml"))?;
    let mut names = Vec::new();
    let mut in_bench = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if in_bench && let Some(rest) = line.strip_prefix("name") {
            let name = rest.trim_start_matches([' ', '=']).trim().trim_matches('"');
            names.push(name.to_string());
        }
    }
    if names.is_empty() {
        return Err("benches/Cargo.toml declares no [[bench]]".into());
    }
    Ok(names)
}

fn feature_args(allocator: &str) -> Vec<String> {
    if allocator == "system" {
        Vec::new()
    } else {
        vec!["--features".to_string(), allocator.to_string()]
    }
}

fn say(pb: &ProgressBar, msg: impl AsRef<str>) {
    if pb.is_hidden() {
        eprintln!("{}", msg.as_ref());
    } else {
        pb.println(msg.as_ref());
    }
}

/// Runs `cmd`, sending its output to `log`; criterion's progress lines ("Benchmarking ", on standard
/// error) update the progress bar and time each benchmark's measurement for the disturbance watch. Returns what the watch saw: others'
/// CPU use (cores) during each benchmark's measurement, by id.
fn run_logged(
    cmd: &mut Command,
    log: &Path,
    pb: &ProgressBar,
) -> Result<std::collections::HashMap<String, f64>> {
    run_watched(cmd, log, pb).map(|(seen, _)| seen)
}

/// [`run_logged`], returning the command's standard output too.
fn run_watched(
    cmd: &mut Command,
    log: &Path,
    pb: &ProgressBar,
) -> Result<(std::collections::HashMap<String, f64>, String)> {
    let mut file = fs::File::create(log).map_err(crate::io_at(log))?;
    writeln!(file, "$ {cmd:?}").map_err(crate::io_at(log))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    // Criterion writes its progress ("Benchmarking ID: Collecting …") to standard error, its results to
    // standard output: both go to the log, the progress also to the bar and the disturbance watch.
    let stderr = child.stderr.take().ok_or("no stderr pipe")?;
    let mut err_log = file.try_clone().map_err(crate::io_at(log))?;
    let bar = pb.clone();
    let progress = std::thread::spawn(move || {
        let mut watch = disturbance::Watch::default();
        for line in BufReader::new(stderr)
            .lines()
            .map_while(std::result::Result::ok)
        {
            let _ = writeln!(err_log, "{line}");
            watch.line(&line);
            if let Some(rest) = line.strip_prefix("Benchmarking ") {
                let id = rest.split(": ").next().unwrap_or(rest);
                bar.set_message(id.to_string());
            }
        }
        watch.seen
    });
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let mut out = String::new();
    for line in BufReader::new(stdout)
        .lines()
        .map_while(std::result::Result::ok)
    {
        writeln!(file, "{line}").map_err(crate::io_at(log))?;
        out.push_str(&line);
        out.push('\n');
    }
    let seen = progress.join().unwrap_or_default();
    let status = child.wait()?;
    if !status.success() {
        let text = fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{cmd:?} failed ({status}); last lines of {}:\n{}",
            log.display(),
            tail.join("\n")
        )
        .into());
    }
    Ok((seen, out))
}

/// The native build (`--native`): the engine bench's E5 groups built with `-C target-cpu=native` (added to
/// any `RUSTFLAGS` of the caller) in their own target directory, so neither build evicts the other's
/// artefacts, run, and labelled [`targets::NATIVE`].
fn run_native(
    opts: &Options,
    out: &Path,
    logs: &Path,
    pb: &ProgressBar,
) -> Result<Vec<report::BenchResult>> {
    const LAYER: &str = "engine";
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if !flags.is_empty() {
        flags.push(' ');
    }
    flags.push_str("-C target-cpu=native");
    let native = |cmd: &mut Command| {
        cmd.env("RUSTFLAGS", &flags)
            .env("CARGO_TARGET_DIR", crate::target_dir().join("native"));
    };
    pb.set_message("building the engine bench with -C target-cpu=native");
    say(
        pb,
        "bench: building the engine bench with -C target-cpu=native",
    );
    let mut build = cargo();
    build.args([
        "bench",
        "--package",
        "flowmem-benches",
        "--bench",
        LAYER,
        "--no-run",
    ]);
    native(&mut build);
    run_logged(&mut build, &logs.join("build-native.log"), pb)?;
    pb.inc(1);
    say(
        pb,
        format!(
            "bench: running {LAYER} ({}, {NATIVE_GROUPS})",
            targets::NATIVE,
            NATIVE_GROUPS = targets::NATIVE_GROUPS
        ),
    );
    let filter = opts.filter.as_deref().unwrap_or(targets::NATIVE_GROUPS);
    run_bench(
        targets::NATIVE,
        LAYER,
        Some(filter),
        opts.quick,
        (out, logs, pb),
        |cmd| native(cmd),
    )
}

/// Builds binaries of the benches crate in release mode (`args`: which, and features), logged to `log`.
fn build_release(args: &[&str], log: &Path, pb: &ProgressBar) -> Result<()> {
    run_logged(
        cargo()
            .args(["build", "--release", "--package", "flowmem-benches"])
            .args(args),
        log,
        pb,
    )
    .map(drop)
}

/// Keeps the binary `bin` of the benches crate just built as `name` in the output directory (builds with
/// other features write their own to the same place).
fn keep_binary(out: &Path, bin: &str, name: &str) -> Result<()> {
    let from = crate::target_dir().join(format!("release/{bin}{EXE}"));
    let to = out.join(format!("{name}{EXE}"));
    fs::copy(&from, &to)
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))?;
    Ok(())
}

/// The command that runs the measuring binary `name` (`counts` or `paired`, kept by `keep_binary`) with
/// `args`, in the run's mode, with `filter` (substrings of the ids to measure, `|` between them).
fn measuring_command(
    out: &Path,
    name: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
    quick: bool,
    filter: Option<&str>,
) -> Command {
    let mut cmd = Command::new(out.join(format!("{name}{EXE}")));
    cmd.args(args)
        .env("FLOWMEM_BENCH_QUICK", if quick { "1" } else { "0" });
    if let Some(f) = filter {
        cmd.args(["--filter", f]);
    }
    cmd
}

/// Runs the measuring binary `name` (`counts` or `paired`, kept by `keep_binary`) with `args` and the
/// run's mode and filter, logs its JSON lines to `log`, and returns them.
fn run_measuring(
    out: &Path,
    name: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
    opts: &Options,
    log: &Path,
) -> Result<String> {
    let mut cmd = measuring_command(out, name, args, opts.quick, opts.filter.as_deref());
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    fs::write(log, &output.stdout).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs the counts binary `name` with `args` and reads its counts.
fn measure_counts(
    out: &Path,
    name: &str,
    args: &[impl AsRef<std::ffi::OsStr>],
    opts: &Options,
    log: &Path,
) -> Result<Vec<report::CountResult>> {
    report::parse_counts(&run_measuring(out, name, args, opts, log)?, "system")
}

/// The layers of the run's `plan` (under any allocator) whose targets take ratios from alternating runs
/// under `allocator` (`benches/src/bin/paired.rs`, built for that allocator).
fn paired_layers(plan: &[(String, String)], allocator: &str) -> Vec<&'static str> {
    targets::paired_layers(allocator)
        .into_iter()
        .filter(|layer| plan.iter().any(|(_, l)| l == layer))
        .collect()
}

/// Runs the paired binary of `allocator`'s build for `layers` and reads its ratios, each with the CPU
/// other processes took while its rounds ran; the ratios they disturbed are measured again, once, and a
/// ratio still disturbed leaves its targets unjudged (as `remeasure_disturbed` does for criterion's).
fn measure_paired(
    out: &Path,
    allocator: &str,
    layers: &[&str],
    opts: &Options,
    (logs, pb): (&Path, &ProgressBar),
) -> Result<Vec<report::PairedResult>> {
    let name = format!("paired-{allocator}");
    let run = |filter: Option<&str>, log: &Path| -> Result<Vec<report::PairedResult>> {
        let mut cmd = measuring_command(out, &name, layers, opts.quick, filter);
        let (seen, stdout) = run_watched(&mut cmd, log, pb)?;
        let mut ratios = report::parse_paired(&stdout)?;
        for r in &mut ratios {
            r.others_cores = seen.get(&r.id).copied();
        }
        Ok(ratios)
    };
    let mut ratios = run(
        opts.filter.as_deref(),
        &logs.join(format!("paired-{allocator}.log")),
    )?;
    let disturbed: Vec<&str> = ratios
        .iter()
        .filter(|r| r.disturbed())
        .map(|r| r.id.as_str())
        .collect();
    if disturbed.is_empty() {
        return Ok(ratios);
    }
    say(
        pb,
        format!(
            "bench: measuring again {} ratio(s) ({allocator}) that other processes disturbed: {}",
            disturbed.len(),
            disturbed.join(", ")
        ),
    );
    let fresh = run(
        Some(&disturbed.join("|")),
        &logs.join(format!("paired-{allocator}-again.log")),
    )?;
    for f in fresh {
        if let Some(old) = ratios.iter_mut().find(|r| r.id == f.id) {
            *old = f;
        }
    }
    Ok(ratios)
}

/// Measures again, once, every benchmark that other processes disturbed (see `disturbance`), and keeps the
/// new figure; one still disturbed leaves its targets unjudged. (Native-build figures are not measured
/// again.)
fn remeasure_disturbed(
    results: &mut [report::BenchResult],
    opts: &Options,
    (out, logs, pb): (&Path, &Path, &ProgressBar),
) -> Result<()> {
    let mut again: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in results
        .iter()
        .filter(|r| r.disturbed() && r.allocator != targets::NATIVE)
    {
        match again
            .iter_mut()
            .find(|(a, l, _)| *a == r.allocator && *l == r.layer)
        {
            Some((_, _, ids)) => ids.push(r.id.clone()),
            None => again.push((r.allocator.clone(), r.layer.clone(), vec![r.id.clone()])),
        }
    }
    for (allocator, layer, ids) in again {
        say(
            pb,
            format!(
                "bench: measuring again {} benchmark(s) of {layer} ({allocator}) that other processes disturbed: {}",
                ids.len(),
                ids.join(", ")
            ),
        );
        let filter = format!(
            "^({})$",
            ids.iter()
                .map(|id| regex_escape(id))
                .collect::<Vec<_>>()
                .join("|")
        );
        let label = format!("{allocator}-again");
        let fresh = run_bench(
            &label,
            &layer,
            Some(&filter),
            opts.quick,
            (out, logs, pb),
            |cmd| {
                cmd.args(feature_args(&allocator));
            },
        )?;
        for mut f in fresh {
            f.allocator.clone_from(&allocator);
            if let Some(old) = results
                .iter_mut()
                .find(|r| r.allocator == allocator && r.layer == layer && r.id == f.id)
            {
                *old = f;
            }
        }
    }
    Ok(())
}

/// `text` with the characters a regex gives meaning to escaped.
fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Runs the bench file `layer` (built for `label`: an allocator, or the native build) with criterion
/// writing to a fresh home of its own, and collects its estimates labelled `label`. `setup` adds the
/// build's features or environment to the `cargo bench` command.
fn run_bench(
    label: &str,
    layer: &str,
    filter: Option<&str>,
    quick: bool,
    (out, logs, pb): (&Path, &Path, &ProgressBar),
    setup: impl FnOnce(&mut Command),
) -> Result<Vec<report::BenchResult>> {
    let home = std::env::current_dir()?
        .join(out)
        .join("criterion")
        .join(label)
        .join(layer);
    if home.exists() {
        fs::remove_dir_all(&home).map_err(crate::io_at(&home))?;
    }
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "flowmem-benches", "--bench", layer]);
    setup(&mut cmd);
    cmd.arg("--")
        .env("CRITERION_HOME", &home)
        .env("FLOWMEM_BENCH_QUICK", if quick { "1" } else { "0" });
    if let Some(f) = filter {
        cmd.arg(f);
    }
    let seen = run_logged(&mut cmd, &logs.join(format!("{label}-{layer}.log")), pb)?;
    pb.inc(1);
    let mut results = report::collect(&home, label, layer)?;
    for r in &mut results {
        r.others_cores = seen.get(&r.id).copied();
    }
    Ok(results)
}

pub(crate) fn run(mut opts: Options) -> Result<()> {
    // A full run (the one that refreshes docs/benchmarks.md) measures the native build too.
    opts.native |= !opts.quick && opts.filter.is_none();
    let started = Instant::now();
    let out = PathBuf::from(OUT);
    let logs = out.join("logs");
    fs::create_dir_all(&logs).map_err(crate::io_at(&logs))?;
    let layers = bench_files()?;

    // The runs: every bench under every chosen allocator, plus the runs the targets need.
    let mut plan: Vec<(String, String)> = Vec::new();
    for a in &opts.allocators() {
        for b in &layers {
            plan.push((a.clone(), b.clone()));
        }
    }
    for layer in &layers {
        // The full run measures the criterion groups under every allocator a target names (the pool's size
        // sweep and pipelines under each, for the report's charts); the quick tour only those whose
        // criterion figures a target divides: P6's other allocators come from the paired binaries alone.
        for a in targets::allocators_needed(std::slice::from_ref(layer), opts.quick) {
            if !plan.iter().any(|(pa, pb)| pa == a && pb == layer) {
                plan.push((a.to_string(), layer.clone()));
            }
        }
    }
    let mut allocators: Vec<String> = Vec::new();
    for a in ALLOCATORS {
        if plan.iter().any(|(pa, _)| pa == a) || !paired_layers(&plan, a).is_empty() {
            allocators.push(a.to_string());
        }
    }

    let pb =
        ProgressBar::new((allocators.len() + plan.len() + 2 * usize::from(opts.native)) as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] [{bar:30}] {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    pb.enable_steady_tick(Duration::from_millis(200));

    let counts_layers: Vec<String> = plan
        .iter()
        .filter(|(a, _)| a == "system")
        .map(|(_, layer)| layer.clone())
        .collect();
    for a in &allocators {
        pb.set_message(format!("building the benches ({a})"));
        let benches = plan.iter().any(|(pa, _)| pa == a);
        say(
            &pb,
            if benches {
                format!("bench: building the benches with the {a} allocator")
            } else {
                format!("bench: building the paired binary with the {a} allocator")
            },
        );
        // Only the bench files this allocator runs (under jemalloc and mimalloc often just `pool`, in the
        // quick tour none): every bench binary is a long link.
        if benches {
            let mut build = cargo();
            build
                .args(["bench", "--package", "flowmem-benches", "--no-run"])
                .args(feature_args(a));
            for (_, layer) in plan.iter().filter(|(pa, _)| pa == a) {
                build.args(["--bench", layer]);
            }
            run_logged(&mut build, &logs.join(format!("build-{a}.log")), &pb)?;
        }
        if a == "system" && !counts_layers.is_empty() {
            build_release(
                &[
                    "--bin",
                    "counts",
                    "--bin",
                    "crash_child",
                    "--bin",
                    "pg_worker",
                    "--bin",
                    "alloc_instr",
                ],
                &logs.join("build-counts.log"),
                &pb,
            )?;
            // The builds with an allocator feature write their own `counts` to the same place: keep this
            // one, and the crash trials' children beside it.
            keep_binary(&out, "counts", "counts")?;
            keep_binary(&out, "crash_child", "crash_child")?;
            keep_binary(&out, "pg_worker", "pg_worker")?;
            keep_binary(&out, "alloc_instr", "alloc_instr")?;
            if counts_layers.iter().any(|l| l == "engine") {
                // The engine with its `tracing` feature, for E2.tracing (its own artifacts: cargo keeps
                // both feature sets, so neither build undoes the other).
                build_release(
                    &["--bin", "counts", "--features", "tracing"],
                    &logs.join("build-counts-tracing.log"),
                    &pb,
                )?;
                keep_binary(&out, "counts", "counts-tracing")?;
            }
        }
        if !paired_layers(&plan, a).is_empty() {
            let mut args = vec!["--bin", "paired"];
            let features = feature_args(a);
            args.extend(features.iter().map(String::as_str));
            build_release(&args, &logs.join(format!("build-paired-{a}.log")), &pb)?;
            keep_binary(&out, "paired", &format!("paired-{a}"))?;
        }
        pb.inc(1);
    }

    let mut results = Vec::new();
    for (a, layer) in &plan {
        say(&pb, format!("bench: running {layer} ({a})"));
        results.extend(run_bench(
            a,
            layer,
            opts.filter.as_deref(),
            opts.quick,
            (&out, &logs, &pb),
            |cmd| {
                cmd.args(feature_args(a));
            },
        )?);
    }
    if opts.native {
        results.extend(run_native(&opts, &out, &logs, &pb)?);
    }
    remeasure_disturbed(&mut results, &opts, (&out, &logs, &pb))?;
    let mut counts = Vec::new();
    if !counts_layers.is_empty() {
        say(
            &pb,
            "bench: measuring counts and sizes (system allocator, Tracking installed)",
        );
        counts = measure_counts(
            &out,
            "counts",
            &counts_layers,
            &opts,
            &logs.join("counts.log"),
        )?;
        if counts_layers.iter().any(|l| l == "engine") {
            counts.extend(measure_counts(
                &out,
                "counts-tracing",
                &["tracing"],
                &opts,
                &logs.join("counts-tracing.log"),
            )?);
        }
    }
    let mut paired = Vec::new();
    for a in &allocators {
        let layers = paired_layers(&plan, a);
        if layers.is_empty() {
            continue;
        }
        say(
            &pb,
            format!(
                "bench: measuring the ratios taken from alternating runs ({a}: {})",
                layers.join(", ")
            ),
        );
        paired.extend(measure_paired(&out, a, &layers, &opts, (&logs, &pb))?);
    }
    pb.finish_and_clear();

    if opts.native {
        allocators.push(targets::NATIVE.to_string());
    }
    let report = Report {
        machine: Machine::detect(),
        quick: opts.quick,
        filter: opts.filter.clone(),
        allocators,
        targets: {
            let mut t = targets::evaluate(&results, &counts, &paired);
            targets::mark_disturbed(&mut t, &results, &paired);
            t
        },
        benches: results,
        counts,
        paired,
    };
    fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report)?,
    )
    .map_err(crate::io_at(out.join("report.json")))?;
    fs::write(out.join("report.md"), report.markdown(true))
        .map_err(crate::io_at(out.join("report.md")))?;
    charts::write(&report, &out.join("charts"))?;
    let full = !opts.quick && opts.filter.is_none();
    if full {
        let mut doc = String::from(
            "<!-- Written by `cargo xtask bench` (a full run); do not edit by hand. -->\n\n",
        );
        doc.push_str(&report.markdown(false));
        fs::write("docs/benchmarks.md", doc).map_err(crate::io_at("docs/benchmarks.md"))?;
    }

    println!(
        "\n{:<8} {:>10} {:>9}  pass  what",
        "target", "ratio", "goal"
    );
    for t in &report.targets {
        let ratio = t.ratio.map_or("–".to_string(), |r| format!("{r:.3}"));
        let pass = match (t.pass, t.disturbed) {
            (Some(true), _) => "yes ",
            (Some(false), _) => "NO  ",
            (None, Some(_)) => "DIST",
            (None, None) => "–   ",
        };
        println!("{:<8} {ratio:>10} {:>9}  {pass}  {}", t.id, t.goal, t.what);
    }
    println!(
        "\nbench: {} benchmarks in {:.0?}; report in {OUT}/report.md and report.json, charts in {OUT}/charts/{}",
        report.benches.len(),
        started.elapsed(),
        if full {
            "; docs/benchmarks.md refreshed"
        } else {
            ""
        }
    );
    // Without a filter every target must have been measured: a missing one means a benchmark id changed
    // or a bench failed to report, and the report would silently show "–".
    let unmeasured: Vec<&str> = report
        .targets
        .iter()
        .filter(|t| t.ratio.is_none())
        .map(|t| t.id.as_str())
        .filter(|id| !targets::NEED_EXTERNAL_DATA.contains(id))
        .filter(|id| !targets::may_be_skipped(id))
        .filter(|id| opts.native || !targets::is_native(id))
        .collect();
    if opts.filter.is_none() && !unmeasured.is_empty() {
        return Err(format!("targets not measured: {}", unmeasured.join(", ")).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn benchmark_ids_are_escaped_for_criterion_filters() {
        assert_eq!(
            regex_escape("sync_arena/sync_arena_2t"),
            "sync_arena/sync_arena_2t"
        );
        assert_eq!(regex_escape("wf_a.b/flowmem(x)"), r"wf_a\.b/flowmem\(x\)");
    }

    #[test]
    fn options() {
        let parse = |args: &[&str]| {
            crate::Cli::try_parse_from(["xtask", "bench"].iter().chain(args)).map(|c| {
                match c.command {
                    crate::Task::Bench(o) => o,
                    other => panic!("not bench: {other:?}"),
                }
            })
        };
        let o = parse(&["--quick", "--allocator", "all", "--filter", "alloc_u64"]).unwrap();
        assert!(o.quick);
        assert_eq!(o.allocators(), ["system", "jemalloc", "mimalloc"]);
        assert_eq!(o.filter.as_deref(), Some("alloc_u64"));
        assert_eq!(parse(&[]).unwrap().allocators(), ["system"]);
        let error = parse(&["--allocator", "tcmalloc"]).unwrap_err().to_string();
        assert!(
            error.contains("tcmalloc") && error.contains("jemalloc"),
            "{error}"
        );
        assert!(parse(&["--fast"]).is_err());
    }

    #[test]
    fn the_bench_manifest_lists_the_alloc_bench() {
        std::env::set_current_dir(crate::workspace_root()).unwrap();
        assert!(bench_files().unwrap().contains(&"alloc".to_string()));
    }
}
