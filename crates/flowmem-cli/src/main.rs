//! `flowmem`: run, validate, export and inspect workflows from the command line.
//!
//! ```text
//! flowmem run FILE [--workers N] [--store PATH] [--timeline OUT.svg] [--json]
//! flowmem validate FILE
//! flowmem export FILE (--dot | --mermaid | --json)
//! flowmem inspect STORE
//! ```
//!
//! FILE is a JSON workflow definition whose nodes name built-in actions (`noop`, `sleep:250ms`,
//! `spin:2ms`, `fail`, `flaky:N`, `panic`), or a WfCommons (WfFormat 1.4–1.6) trace. Exit codes: see
//! [`Exit`].

mod inspect;
mod progress;
mod run;
mod source;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// How the command ended (the process's exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// 0: done (the run completed; the file is valid; the export or inspection was written).
    Ok = 0,
    /// 1: the run ended failed or cancelled (the report says which nodes and why).
    RunFailed = 1,
    /// 2: bad usage or bad input: an unreadable file, invalid JSON (line and column), an invalid
    /// workflow (a cycle, named), an unknown action.
    BadInput = 2,
    /// 3: the checkpoint store: it cannot be opened (locked by another process, not a store file),
    /// is damaged (the offset is named), or holds this run of another workflow.
    Store = 3,
    /// 4: an output file (the timeline) could not be written.
    Output = 4,
}

/// An error and the exit code it ends the command with.
#[derive(Debug)]
struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl std::fmt::Display) -> Self {
        Failure {
            exit,
            message: message.to_string(),
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "flowmem",
    version,
    about = "Run, validate, export and inspect flowmem workflows",
    after_help = "FILE is a JSON workflow definition (nodes naming built-in actions: noop, sleep:250ms, \
                  spin:2ms, fail, fail:MESSAGE, flaky:N, panic) or a WfCommons WfFormat trace.\n\n\
                  Exit codes: 0 done; 1 the run failed or was cancelled; 2 bad usage or bad input; \
                  3 the checkpoint store (locked, damaged, another workflow's run); 4 an output file \
                  could not be written."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workflow and report how it went.
    Run(RunArgs),
    /// Check a workflow file: JSON errors with line and column, cycles named.
    Validate {
        /// The workflow file.
        file: PathBuf,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Write a workflow as a Graphviz DOT graph, a Mermaid flowchart or a JSON definition.
    Export {
        /// The workflow file.
        file: PathBuf,
        /// The format.
        #[command(flatten)]
        format: ExportFormat,
        #[command(flatten)]
        trace: TraceArgs,
    },
    /// Show what a checkpoint store holds: runs, nodes checkpointed, sizes, and any damage by offset.
    Inspect {
        /// The store file (as given to `run --store`).
        store: PathBuf,
        /// The inspection as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The workflow file.
    file: PathBuf,
    /// Worker threads [default: the machine's cores].
    #[arg(long, short)]
    workers: Option<usize>,
    /// Checkpoint completed nodes in this file; running the same workflow with it again resumes the
    /// run (only nodes not checkpointed run).
    #[arg(long)]
    store: Option<PathBuf>,
    /// The run's id in the store (a UUID, or any text, named into one) [default: from the workflow's
    /// name and fingerprint].
    #[arg(long, requires = "store")]
    run_id: Option<String>,
    /// Forget the run's checkpoints in the store first: run every node again.
    #[arg(long, requires = "store")]
    fresh: bool,
    /// Write the run's timeline (a bar per attempt, a lane per worker, the critical path) as SVG.
    #[arg(long, value_name = "OUT.svg")]
    timeline: Option<PathBuf>,
    /// Print the run's report as JSON (on standard output) instead of a summary.
    #[arg(long)]
    json: bool,
    /// Keep going after a node fails (independent branches finish) instead of stopping the run.
    #[arg(long)]
    keep_going: bool,
    #[command(flatten)]
    trace: TraceArgs,
}

/// How a WfCommons trace's tasks run (a JSON definition names its own actions).
#[derive(Debug, Clone, Copy, Args)]
struct TraceArgs {
    /// What each task of a WfCommons trace does.
    #[arg(long, value_enum, default_value_t = TaskKind::Sleep)]
    tasks: TaskKind,
    /// Factor on each task's recorded runtime (0.001: a recorded second runs for a millisecond).
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    scale: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TaskKind {
    /// Nothing: the engine alone.
    Noop,
    /// Sleep for the scaled runtime (holds a worker, uses no CPU).
    Sleep,
    /// Busy-wait for the scaled runtime (a CPU-bound stand-in).
    Spin,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct ExportFormat {
    /// Graphviz DOT.
    #[arg(long)]
    dot: bool,
    /// A Mermaid flowchart.
    #[arg(long)]
    mermaid: bool,
    /// A JSON definition (a trace's tasks become built-in `sleep`/`spin`/`noop` nodes).
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Validate { file, trace } => source::validate(&file, trace),
        Command::Export {
            file,
            format,
            trace,
        } => source::export(&file, &format, trace),
        Command::Inspect { store, json } => inspect::inspect(&store, json),
    };
    match outcome {
        Ok(exit) => ExitCode::from(exit as u8),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.exit as u8)
        }
    }
}
