//! `cargo xtask valgrind`: the tests of every crate that contains `unsafe`, under valgrind memcheck.
//!
//! A crate contains `unsafe` unless its `lib.rs` says `#![forbid(unsafe_code)]`. Its test binaries are built
//! by cargo and run under `valgrind --error-exitcode`, with `FLOWMEM_TEST_SCALE=valgrind` (tests shrink their
//! loops) and `QUICKCHECK_TESTS=20`, so the run takes minutes.

use std::{fs, path::PathBuf, process::Command};

use serde_json::Value;

use crate::{Result, cargo, run_checked};

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

/// The test executables of `package`, built now.
fn test_binaries(package: &str) -> Result<Vec<PathBuf>> {
    let out = cargo()
        .args([
            "test",
            "--package",
            package,
            "--no-run",
            "--message-format=json",
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "building the tests of {package} failed:\n{}",
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
        {
            binaries.push(PathBuf::from(exe));
        }
    }
    Ok(binaries)
}

pub(crate) fn run() -> Result<()> {
    if Command::new("valgrind").arg("--version").output().is_err() {
        return Err("valgrind is not installed (Debian: apt-get install valgrind)".into());
    }
    let crates = crates_with_unsafe()?;
    println!("valgrind: crates with unsafe code: {crates:?}");
    for package in &crates {
        for exe in test_binaries(package)? {
            run_checked(
                Command::new("valgrind")
                    .args([
                        "--tool=memcheck",
                        "--error-exitcode=99",
                        "--leak-check=full",
                        "--errors-for-leak-kinds=definite",
                        "--show-leak-kinds=definite",
                        "--quiet",
                    ])
                    .arg(&exe)
                    .args(["--test-threads=2"])
                    .env("FLOWMEM_TEST_SCALE", "valgrind")
                    .env("QUICKCHECK_TESTS", "20"),
            )?;
        }
    }
    println!("valgrind: clean");
    Ok(())
}
