//! Project automation for flowmem. Run from anywhere in the workspace:
//!
//! ```text
//! cargo xtask bench [--quick] [--filter REGEX] [--allocator system|jemalloc|mimalloc|all] [--native]
//! cargo xtask features     # the facade builds with no feature, each feature alone, and all
//! cargo xtask layers       # every crate depends only on lower layers
//! cargo xtask valgrind     # tests of the crates with `unsafe`, under valgrind memcheck
//! cargo xtask stress       # the long, #[ignore]d stress tests, in release mode
//! ```

mod bench;
mod charts;
mod disturbance;
mod features;
mod layers;
mod machine;
mod report;
mod stress;
mod targets;
mod valgrind;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

/// The error of every command: a message for the person who ran it.
pub(crate) type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// `cargo xtask`: the project's commands.
#[derive(Debug, clap::Parser)]
#[command(
    name = "cargo xtask",
    about = "The commands that build, check and measure the flowmem workspace"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Task,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Task {
    /// Run the criterion benches of benches/ and the counts, and write target/flowmem-bench/report.{json,md}
    /// and SVG charts; a full run (no --quick, no --filter) also refreshes docs/benchmarks.md.
    Bench(bench::Options),
    /// Check that the facade builds with no feature, each feature alone, and all features.
    Features,
    /// Check that each crate depends only on crates of lower layers.
    Layers,
    /// Run the tests of the crates that contain `unsafe` under valgrind memcheck.
    Valgrind,
    /// Run the long `#[ignore]` stress tests in release mode.
    Stress,
}

fn main() -> ExitCode {
    let cli = <Cli as clap::Parser>::parse();
    if let Err(e) = std::env::set_current_dir(workspace_root()) {
        eprintln!(
            "xtask: cannot enter the workspace root {}: {e}",
            workspace_root().display()
        );
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Task::Bench(options) => bench::run(options),
        Task::Features => features::run(),
        Task::Layers => layers::run(),
        Task::Valgrind => valgrind::run(),
        Task::Stress => stress::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An I/O error's message naming the file or directory it is about (`.map_err(io_at(path))?`).
pub(crate) fn io_at(path: impl AsRef<Path>) -> impl FnOnce(std::io::Error) -> String {
    let path = path.as_ref().display().to_string();
    move |e| format!("{path}: {e}")
}

/// The workspace root: the parent of this crate's directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in a subdirectory of the workspace")
        .to_path_buf()
}

/// A `cargo` command, using the cargo that runs xtask.
/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root, where xtask
/// runs), `target` otherwise.
pub(crate) fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| "target".into(), Into::into)
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cmd` with inherited output; an error if it fails.
pub(crate) fn run_checked(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status})").into());
    }
    Ok(())
}
