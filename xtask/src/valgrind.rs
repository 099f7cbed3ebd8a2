//! `cargo xtask valgrind`: the tests of every crate that contains `unsafe`, under valgrind memcheck.
//!
//! A crate contains `unsafe` unless its `lib.rs` says `#![forbid(unsafe_code)]`. Its test binaries (those of
//! `cargo test --workspace`, the README's test command) run under `valgrind --error-exitcode`, with
//! `FLOWMEM_TEST_SCALE=valgrind` (tests shrink their loops) and `QUICKCHECK_TESTS=20`, one binary per core at
//! a time (valgrind runs a process's threads on one core), so the run takes minutes.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use serde_json::Value;

use crate::{Result, cargo};

/// Crates under `crates/` whose `lib.rs` does not forbid `unsafe`.
fn crates_with_unsafe() -> Result<Vec<String>> {
    let mut found = Vec::new();
    for entry in fs::read_dir("crates").map_err(crate::io_at("crates"))? {
        let dir = entry?.path();
        let lib = dir.join("src/lib.rs");
        let Ok(text) = fs::read_to_string(&lib) else {
            continue;
        };
        if !text.contains("#![forbid(unsafe_code)]") {
            found.push(
                dir.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    found.sort();
    Ok(found)
}

/// The test executables of `packages`, from one `cargo test --workspace --no-run`: the build of the
/// README's test command, so nothing is compiled again when `cargo test --workspace` ran before.
fn test_binaries(packages: &[String]) -> Result<Vec<PathBuf>> {
    let out = cargo()
        .args(["test", "--workspace", "--no-run", "--message-format=json"])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "building the workspace's tests failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut binaries = Vec::new();
    for line in out.stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["profile"]["test"] == true
            && let Some(exe) = msg["executable"].as_str()
            && let Some(manifest) = msg["manifest_path"].as_str()
            && packages.iter().any(|p| {
                PathBuf::from(manifest)
                    .ends_with(PathBuf::from("crates").join(p).join("Cargo.toml"))
            })
        {
            binaries.push(PathBuf::from(exe));
        }
    }
    binaries.sort();
    Ok(binaries)
}

/// `exe` under memcheck, its output captured; an error carries the output.
fn memcheck(exe: &Path) -> Result<()> {
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--tool=memcheck",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        "--show-leak-kinds=definite",
        "--quiet",
    ])
    .arg(exe)
    .args(["--test-threads=2"])
    .env("FLOWMEM_TEST_SCALE", "valgrind")
    .env("QUICKCHECK_TESTS", "20");
    let started = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    println!("valgrind: {name} clean ({:.0?})", started.elapsed());
    Ok(())
}

pub(crate) fn run() -> Result<()> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err("valgrind is not installed (Debian: apt-get install valgrind)".into());
    }
    let crates = crates_with_unsafe()?;
    println!("valgrind: crates with unsafe code: {crates:?}");
    let binaries = test_binaries(&crates)?;
    if binaries.is_empty() {
        return Err(format!("no test binaries found for {crates:?}").into());
    }
    // Valgrind runs a process's threads one at a time: one binary per core keeps both cores busy.
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let next = AtomicUsize::new(0);
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(exe) = binaries.get(i) else {
                            break failed;
                        };
                        if let Err(e) = memcheck(exe) {
                            failed.push(e.to_string());
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a valgrind worker panicked"))
            .collect()
    });
    if !failures.is_empty() {
        return Err(failures.join("\n\n").into());
    }
    println!("valgrind: {} test binaries clean", binaries.len());
    Ok(())
}
