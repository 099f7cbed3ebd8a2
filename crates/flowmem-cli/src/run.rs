//! `flowmem run FILE`: run a workflow (durably with `--store`, resuming), show progress, and report as a
//! summary or as JSON; draw its timeline with `--timeline`.

use std::{sync::Arc, time::Duration};

use flowmem_engine::{
    CheckpointStore, Executor, FailurePolicy, FileCheckpoints, NodeStatus, RunId, RunOptions,
    RunReport, RunStatus, Timeline, Workflow,
};

use crate::{Exit, Failure, RunArgs, progress::Progress, source};

/// How often the progress is looked at.
const TICK: Duration = Duration::from_millis(100);

/// The run id a workflow gets in a store unless `--run-id` names one: the same workflow (name and
/// fingerprint) run again with the same store resumes.
fn default_run_id(workflow: &Workflow) -> RunId {
    RunId::named(&format!(
        "{}/{:016x}",
        workflow.name(),
        workflow.fingerprint()
    ))
}

pub(crate) fn run(args: &RunArgs) -> Result<Exit, Failure> {
    let loaded = source::load(&args.file, args.trace)?;
    let workflow = &loaded.workflow;
    let workers = match args.workers {
        Some(0) => {
            return Err(Failure::new(
                Exit::BadInput,
                "--workers 0: a run needs a worker",
            ));
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(2, usize::from),
    };
    let executor = Executor::new(workers);
    let mut options = RunOptions::new().record_attempts(args.timeline.is_some());
    if args.keep_going {
        options = options.policy(FailurePolicy::ContinueIndependent);
    }
    let handle = match &args.store {
        Some(path) => {
            let store = FileCheckpoints::open(path).map_err(|e| Failure::new(Exit::Store, e))?;
            let run = match &args.run_id {
                Some(text) => text.parse::<RunId>().unwrap_or_else(|_| RunId::named(text)),
                None => default_run_id(workflow),
            };
            if args.fresh {
                store
                    .forget(run)
                    .map_err(|e| Failure::new(Exit::Store, e))?;
            }
            executor
                .submit_durable(workflow, Arc::new(store), run, options)
                .map_err(|e| Failure::new(Exit::Store, e))?
        }
        None => executor.submit_with(workflow, options),
    };
    let mut progress = Progress::new(workflow.len());
    let report = loop {
        if let Some(report) = handle.wait_timeout(TICK) {
            break report;
        }
        progress.update(handle.progress().0);
    };
    progress.finish(handle.progress().0);
    drop(handle);
    let critical = match &args.timeline {
        Some(path) => {
            let timeline =
                Timeline::new(workflow, &report).map_err(|e| Failure::new(Exit::Output, e))?;
            timeline
                .write_svg(path)
                .map_err(|e| Failure::new(Exit::Output, e))?;
            Some((path, timeline.critical_path().join(" → ")))
        }
        None => None,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::new(Exit::Output, format!("the report as JSON: {e}")))?;
        println!("{text}");
    } else {
        summary(&report, &loaded.kind, args);
        if let Some((path, path_nodes)) = critical {
            println!("timeline: {} (critical path: {path_nodes})", path.display());
        }
    }
    Ok(match (&report.store_error, report.status) {
        (Some(e), _) => {
            eprintln!("error: the checkpoint store failed: {e}");
            Exit::Store
        }
        (None, RunStatus::Completed) => Exit::Ok,
        (None, _) => Exit::RunFailed,
    })
}

/// The human summary: how the run ended, counts, the slowest nodes, failures with their errors.
fn summary(report: &RunReport, kind: &str, args: &RunArgs) {
    println!(
        "{:?}: workflow `{}` ({kind}, {} nodes) in {:.3?}, run {}",
        report.status,
        report.workflow,
        report.nodes.len(),
        report.duration,
        report.id
    );
    let attempts: u32 = report.nodes.iter().map(|n| n.attempts).sum();
    let ran = report.nodes.iter().filter(|n| n.attempts > 0).count();
    println!(
        "  {} tasks run, {} restored · {} completed, {} failed, {} skipped, {} cancelled · {attempts} attempts",
        ran,
        report.restored(),
        report.count(NodeStatus::Completed),
        report.count(NodeStatus::Failed),
        report.count(NodeStatus::Skipped),
        report.count(NodeStatus::Cancelled),
    );
    let mut slowest: Vec<_> = report
        .nodes
        .iter()
        .filter(|n| !n.duration.is_zero())
        .collect();
    slowest.sort_by_key(|n| std::cmp::Reverse(n.duration));
    if !slowest.is_empty() {
        let shown: Vec<String> = slowest
            .iter()
            .take(5)
            .map(|n| format!("{} ({:.2?})", n.name, n.duration))
            .collect();
        println!("  slowest: {}", shown.join(", "));
    }
    for node in report
        .nodes
        .iter()
        .filter(|n| n.status == NodeStatus::Failed)
    {
        if let Some(error) = &node.error {
            println!(
                "  failed: `{}` after {} attempts: {:?}: {}",
                node.name,
                node.attempts,
                error.kind(),
                error.message()
            );
        }
    }
    if let Some(store) = &args.store {
        println!(
            "  store: {} (run {}; run the same command again to resume{})",
            store.display(),
            report.id,
            if report.status == RunStatus::Completed {
                ", --fresh to run it all again"
            } else {
                ""
            }
        );
    }
}
