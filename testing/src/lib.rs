//! Test support shared by the flowmem crates (a dev-dependency only; outside the layers).
//!
//! `FLOWMEM_TEST_SCALE` sets how much work the tests do:
//! - unset: the default `cargo test` sizes (minutes for the whole workspace on 2 cores);
//! - `valgrind`: much smaller, for `cargo xtask valgrind`, where everything runs tens of times slower;
//! - `stress`: larger property runs, for `cargo xtask stress`.
#![forbid(unsafe_code)]

#[cfg(feature = "engine")]
pub mod engine;
pub mod sites;

use quickcheck::QuickCheck;

/// The scale the tests run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// `cargo test`.
    Default,
    /// `cargo xtask valgrind`.
    Valgrind,
    /// `cargo xtask stress`.
    Stress,
}

/// The scale from `FLOWMEM_TEST_SCALE`.
pub fn scale() -> Scale {
    match std::env::var("FLOWMEM_TEST_SCALE").as_deref() {
        Ok("valgrind") => Scale::Valgrind,
        Ok("stress") => Scale::Stress,
        _ => Scale::Default,
    }
}

/// Number of property cases: `n` by default, a tenth (at least 5) under valgrind, ten times under stress.
pub fn cases(n: u64) -> u64 {
    match scale() {
        Scale::Valgrind => (n / 10).max(5),
        Scale::Stress => n * 10,
        Scale::Default => n,
    }
}

/// A quickcheck runner with `cases(n)` tests.
pub fn quickcheck(n: u64) -> QuickCheck {
    QuickCheck::new().tests(cases(n))
}

/// A loop count for a concurrency test: `n`, or a twentieth (at least 10) under valgrind.
pub fn iterations(n: u64) -> u64 {
    match scale() {
        Scale::Valgrind => (n / 20).max(10),
        _ => n,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_scale_keeps_sizes() {
        if std::env::var_os("FLOWMEM_TEST_SCALE").is_none() {
            assert_eq!(super::cases(100), 100);
            assert_eq!(super::iterations(1000), 1000);
        }
    }
}
