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

const USAGE: &str = "usage: cargo xtask <command>

commands:
  bench [--quick] [--filter REGEX] [--allocator system|jemalloc|mimalloc|all] [--native]
            run the criterion benches of benches/ and write target/flowmem-bench/report.{json,md}
            and SVG charts; a full run (no --quick, no --filter) also refreshes docs/benchmarks.md;
            --native also builds the E5 helpers' benches with -C target-cpu=native (E5.native; always
            in a full run)
  features  check that the facade builds with no feature, each feature alone, and all features
  layers    check that each crate depends only on crates of lower layers
  valgrind  run the tests of the crates that contain `unsafe` under valgrind memcheck
  stress    run the long #[ignore]d stress tests in release mode";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = std::env::set_current_dir(workspace_root()) {
        eprintln!("xtask: cannot enter the workspace root: {e}");
        return ExitCode::FAILURE;
    }
    let rest = args.get(1..).unwrap_or(&[]);
    let result = match args.first().map(String::as_str) {
        Some("bench") => bench::run(rest),
        Some("features") => features::run(),
        Some("layers") => layers::run(),
        Some("valgrind") => valgrind::run(),
        Some("stress") => stress::run(),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}").into()),
        None => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
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
