//! `cargo xtask stress`: the long stress tests, `#[ignore]`d in the default `cargo test`, at full scale.

use crate::{Result, cargo, run_checked};

pub(crate) fn run() -> Result<()> {
    run_checked(
        cargo()
            .args([
                "test",
                "--workspace",
                "--release",
                "--tests",
                "--",
                "--ignored",
            ])
            .env("FLOWMEM_TEST_SCALE", "stress"),
    )
}
