//! Runs a WfCommons trace durably: imports a WfFormat file, runs it with a file store, prints the report.
//! Kill it (Ctrl-C) midway and start it again: the run resumes, and completed tasks are not run again.
//!
//! ```text
//! cargo run -p flowmem --example durable_trace -- ../shared/wfcommons/montage-chameleon-dss-15d-001.json
//! cargo run -p flowmem --example durable_trace -- FILE [--store STORE] [--scale S] [--sleep] [--fresh]
//! ```
//!
//! Each task spins (or with `--sleep`, sleeps) for its recorded runtime times `--scale` (default 0.001: a
//! second becomes a millisecond). The store defaults to `FILE`'s name with `.fms` in the system's temporary
//! folder; the run id is named after the file, so running the same file again resumes the same run
//! (`--fresh` forgets it first).

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use flowmem::engine::{
    CheckpointStore, Executor, FileCheckpoints, NodeStatus, RunId, RunStatus, TaskAction,
    import_wfcommons_file,
};

struct Args {
    file: PathBuf,
    store: Option<PathBuf>,
    scale: f64,
    sleep: bool,
    fresh: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut parsed = Args {
        file: PathBuf::new(),
        store: None,
        scale: 0.001,
        sleep: false,
        fresh: false,
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--store" => parsed.store = Some(args.next().ok_or("--store needs a path")?.into()),
            "--scale" => {
                let s = args.next().ok_or("--scale needs a number")?;
                parsed.scale = s
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                    .ok_or(format!("--scale: `{s}` is not a number >= 0"))?;
            }
            "--sleep" => parsed.sleep = true,
            "--fresh" => parsed.fresh = true,
            flag if flag.starts_with("--") => return Err(format!("unknown option `{flag}`")),
            path if file.is_none() => file = Some(PathBuf::from(path)),
            extra => return Err(format!("one trace file only (also got `{extra}`)")),
        }
    }
    parsed.file = file.ok_or("give a WfCommons WfFormat file, e.g. ../shared/wfcommons/montage-chameleon-dss-15d-001.json")?;
    Ok(parsed)
}

fn main() -> ExitCode {
    match run() {
        Ok(RunStatus::Completed) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("durable_trace: {e}");
            eprintln!("usage: durable_trace FILE [--store STORE] [--scale S] [--sleep] [--fresh]");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<RunStatus, Box<dyn std::error::Error>> {
    let args = parse()?;
    let action = if args.sleep {
        TaskAction::Sleep { scale: args.scale }
    } else {
        TaskAction::Spin { scale: args.scale }
    };
    let imported = import_wfcommons_file(&args.file, action)?;
    let stem = args
        .file
        .file_stem()
        .map_or("trace".into(), |s| s.to_string_lossy().into_owned());
    println!(
        "{}: schema {}, {} tasks, {} edges ({} listed on one side only, {} naming no task, {} without a \
         runtime)",
        args.file.display(),
        imported.schema_version,
        imported.tasks,
        imported.edges,
        imported.disagreements.len(),
        imported.unknown_tasks.len(),
        imported.missing_runtimes
    );

    let store_path = args
        .store
        .unwrap_or_else(|| std::env::temp_dir().join(format!("flowmem-{stem}.fms")));
    let store = Arc::new(FileCheckpoints::open(&store_path)?);
    let run = RunId::named(&stem);
    if args.fresh && store.forget(run)? {
        println!("forgot the earlier run {run}");
    }
    if let Some(earlier) = store.load(run)? {
        println!(
            "resuming run {run}: {} of {} tasks already completed",
            earlier.nodes.len(),
            imported.tasks
        );
    } else {
        println!("starting run {run} (store {})", store_path.display());
    }

    let executor = Executor::new(0);
    let report = executor.run_durable(&imported.workflow, store.clone(), run)?;
    let ran = report.nodes.len() - report.restored();
    println!(
        "{:?} in {:?} on {} workers: {} tasks run, {} restored from the store, {} failed",
        report.status,
        report.duration,
        executor.workers(),
        ran,
        report.restored(),
        report.count(NodeStatus::Failed)
    );
    if let Some(e) = &report.store_error {
        println!("the store could not make the run durable: {e}");
    }
    let mut slowest: Vec<_> = report.nodes.iter().filter(|n| !n.restored).collect();
    slowest.sort_by_key(|n| std::cmp::Reverse(n.duration));
    for n in slowest.iter().take(5) {
        println!(
            "  {:<40} {:>10.3?}  attempts {}",
            n.name, n.duration, n.attempts
        );
    }
    for n in report.nodes.iter().filter(|n| n.error.is_some()).take(5) {
        println!(
            "  {} failed: {}",
            n.name,
            n.error.as_ref().map_or(String::new(), ToString::to_string)
        );
    }
    let stats = store.stats();
    println!(
        "store: {} records, {} commits ({:.1} records per fdatasync); run again to see it resume, --fresh to start over",
        stats.records,
        stats.commits,
        stats.records as f64 / stats.commits.max(1) as f64
    );
    Ok(report.status)
}
