//! `cargo xtask features`: the facade builds with no feature, with each feature alone and with all of them.

use crate::{Result, cargo, run_checked};

/// Every feature of the facade (`crates/flowmem/Cargo.toml`), `default` aside.
const FEATURES: &[&str] = &[
    "full",
    "alloc",
    "intern",
    "pool",
    "map",
    "store",
    "engine",
    "postgres",
    "jemalloc",
    "mimalloc",
    "zstd",
    "tokio",
    "serde",
    "tracing",
    "flamegraph",
];

pub(crate) fn run() -> Result<()> {
    let mut sets: Vec<Vec<&str>> = vec![vec!["--no-default-features"]];
    for feature in FEATURES {
        sets.push(vec!["--no-default-features", "--features", feature]);
    }
    sets.push(vec!["--all-features"]);
    for set in &sets {
        run_checked(
            cargo()
                .args(["check", "--package", "flowmem", "--all-targets", "--quiet"])
                .args(set),
        )?;
    }
    // The test that touches every re-export, with every re-export present.
    run_checked(cargo().args(["test", "--package", "flowmem", "--all-features", "--quiet"]))?;
    println!(
        "features: the facade builds with {} feature sets",
        sets.len()
    );
    Ok(())
}
