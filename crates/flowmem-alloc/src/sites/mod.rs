//! Sampled allocation sites: where a program's heap allocations come from, cheap enough to leave on.
//!
//! [`Tracking`](crate::Tracking) counts every allocation; this module says *where* they are made. While
//! sampling is on ([`start`]), each thread counts the bytes it allocates down from a random interval
//! (exponentially distributed, of mean [`SiteOptions::mean_interval`], as tcmalloc's and jemalloc's
//! profilers draw theirs): the allocation that reaches zero is sampled. Every byte has the same chance to
//! be sampled, so large and small allocations are both represented without bias, and a sample of `size`
//! bytes stands for `size / p` bytes, with `p = 1 − e^(−size/mean)` its chance to be sampled.
//!
//! A sample captures the stack (the system unwinder, no allocation, no lock) into a bounded table of
//! [`MAX_SITES`] stacks and, while the allocation lives, a table of [`MAX_LIVE`] live samples. Symbols
//! are resolved only when a [`report`] is made. Nothing of this runs inside the allocator between samples
//! but a countdown, and a table look-up on free only where a live sample may be.
//!
//! ```
//! use flowmem_alloc::{Tracking, sites};
//!
//! #[global_allocator]
//! static GLOBAL: Tracking<std::alloc::System> = Tracking::new(std::alloc::System);
//!
//! #[inline(never)]
//! fn parse() -> Vec<Vec<u8>> {
//!     (0..20_000).map(|i| vec![0u8; 64 + i % 64]).collect()
//! }
//!
//! fn main() -> Result<(), flowmem_alloc::AllocError> {
//!     sites::start(sites::SiteOptions::new().mean_interval(16 * 1024))?;
//!     let rows = parse();
//!     sites::stop();
//!     let report = sites::report();
//!     assert!(report.samples > 0);
//!     println!("{report}"); // top sites by bytes and by count, and live at peak
//!     drop(rows);
//!     Ok(())
//! }
//! ```
//!
//! Reports accumulate from the first [`start`]: [`SiteReport::since`] gives what happened between two
//! reports. [`from_env`] starts sampling when `FLOWMEM_ALLOC_SITES` names a file, and writes the report
//! there when its guard drops.

mod report;
mod sampler;
mod table;

use std::{
    path::PathBuf,
    sync::atomic::Ordering::{AcqRel, Relaxed},
};

pub use report::{Frame, Metric, SiteReport, SiteStats};
pub use table::{MAX_FRAMES, MAX_LIVE, MAX_SITES};

use crate::{AllocError, tracking};

/// The default mean bytes between samples: 2 MiB, tcmalloc's default. A sample costs a stack capture
/// (a few microseconds with the system unwinder): at jemalloc's 512 KiB, a loop that does nothing but
/// allocate takes 1.2× its time without sampling, at 2 MiB 1.05× (bench `alloc_sites`, target T1), and
/// three sites' shares of 2 GB allocated are still estimated within 0.01 (T3).
pub const DEFAULT_MEAN_INTERVAL: u64 = 2 * 1024 * 1024;

/// Settings of [`start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteOptions {
    mean_interval: u64,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            mean_interval: DEFAULT_MEAN_INTERVAL,
        }
    }
}

impl SiteOptions {
    /// The defaults: a sample every [`DEFAULT_MEAN_INTERVAL`] bytes on average.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mean bytes between samples (at least 1). Smaller: more samples, closer estimates, more time spent
    /// sampling (a stack capture each).
    pub fn mean_interval(mut self, bytes: u64) -> Self {
        self.mean_interval = bytes.max(1);
        self
    }

    /// The mean bytes between samples.
    pub fn interval(&self) -> u64 {
        self.mean_interval
    }
}

/// Starts sampling allocation sites (or changes the interval of a running sampler).
///
/// # Errors
///
/// [`AllocError::TrackingNotInstalled`] when [`Tracking`](crate::Tracking) is not the program's global
/// allocator: it is what samples.
pub fn start(options: SiteOptions) -> Result<(), AllocError> {
    if !tracking::is_installed() {
        return Err(AllocError::TrackingNotInstalled);
    }
    sampler::MEAN.store(options.mean_interval, Relaxed);
    sampler::GENERATION.fetch_add(1, AcqRel);
    sampler::ENABLED.store(true, Relaxed);
    Ok(())
}

/// Stops sampling. What was sampled stays for [`report`]; frees of sampled allocations are still seen,
/// so live figures stay right.
pub fn stop() {
    sampler::ENABLED.store(false, Relaxed);
}

/// Whether sampling is on.
pub fn is_running() -> bool {
    sampler::ENABLED.load(Relaxed)
}

/// Allocations made by the sampler itself while it took a sample (passed through unsampled). It captures
/// stacks without allocating, so this is 0; tests check it.
pub fn reentered() -> u64 {
    sampler::REENTERED.load(Relaxed)
}

/// Everything sampled since the first [`start`], with symbols resolved. Building it allocates (symbol
/// tables, names), outside the allocator; those allocations of the calling thread are not sampled.
pub fn report() -> SiteReport {
    sampler::unsampled(report::build)
}

/// Called by [`Tracking`](crate::Tracking) for each allocation while sampling is on.
#[inline]
pub(crate) fn on_alloc(ptr: *mut u8, size: u64) {
    if sampler::ENABLED.load(Relaxed) {
        sampler::on_alloc(ptr, size);
    }
}

/// Called by [`Tracking`](crate::Tracking) for each free.
#[inline]
pub(crate) fn on_free(ptr: *mut u8) {
    if table::LIVE_COUNT.load(Relaxed) != 0 {
        table::remove_live(ptr as usize);
    }
}

/// The environment variable naming the report file of [`from_env`].
pub const ENV_PATH: &str = "FLOWMEM_ALLOC_SITES";
/// The environment variable giving [`from_env`]'s mean interval in bytes (default
/// [`DEFAULT_MEAN_INTERVAL`]).
pub const ENV_MEAN: &str = "FLOWMEM_ALLOC_SITES_MEAN";

/// Starts sampling when the environment asks for it: `FLOWMEM_ALLOC_SITES=path` (and optionally
/// `FLOWMEM_ALLOC_SITES_MEAN=bytes`). Keep the guard for the life of `main`: when it drops, sampling stops
/// and the report is written to `path` (text), `path.folded` (folded stacks of bytes allocated, for
/// flamegraph tools) and, with the `flamegraph` feature, `path.svg`.
///
/// ```no_run
/// #[global_allocator]
/// static GLOBAL: flowmem_alloc::Tracking<std::alloc::System> =
///     flowmem_alloc::Tracking::new(std::alloc::System);
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let _sites = flowmem_alloc::sites::from_env()?; // FLOWMEM_ALLOC_SITES=sites.txt ./my-binary
///     // ... the program ...
///     Ok(())
/// }
/// ```
///
/// # Errors
///
/// [`AllocError::TrackingNotInstalled`] as [`start`], and [`AllocError::BadEnvironment`] for a mean that
/// is not a positive number of bytes.
pub fn from_env() -> Result<Option<SiteGuard>, AllocError> {
    let Some(path) = std::env::var_os(ENV_PATH).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let mut options = SiteOptions::new();
    if let Some(mean) = std::env::var_os(ENV_MEAN) {
        let text = mean.to_string_lossy().into_owned();
        match text.trim().parse::<u64>() {
            Ok(bytes) if bytes > 0 => options = options.mean_interval(bytes),
            _ => {
                return Err(AllocError::BadEnvironment {
                    variable: ENV_MEAN,
                    value: text,
                    expected: "a positive number of bytes",
                });
            }
        }
    }
    start(options)?;
    Ok(Some(SiteGuard {
        path: PathBuf::from(path),
        done: false,
    }))
}

/// From [`from_env`]: writes the report when dropped (or by [`finish`](SiteGuard::finish)).
#[derive(Debug)]
pub struct SiteGuard {
    path: PathBuf,
    done: bool,
}

impl SiteGuard {
    /// Where the report goes.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Stops sampling, writes the report files and returns the report.
    ///
    /// # Errors
    ///
    /// A file that could not be written, with its path.
    pub fn finish(mut self) -> std::io::Result<SiteReport> {
        self.write()
    }

    fn write(&mut self) -> std::io::Result<SiteReport> {
        self.done = true;
        stop();
        let report = report();
        report.write_files(&self.path)?;
        Ok(report)
    }
}

impl Drop for SiteGuard {
    fn drop(&mut self) {
        if !self.done
            && let Err(e) = self.write()
        {
            eprintln!("flowmem_alloc::sites: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_stands_for_the_bytes_it_had_a_chance_to_catch() {
        // Large allocations are nearly always sampled: they stand for themselves.
        let big = sampler::weight(100 * 1024 * 1024, 512 * 1024);
        assert_eq!(big.bytes, 100 * 1024 * 1024);
        assert_eq!(big.count_milli, 1000);
        // A small one is sampled about once in mean/size: it stands for about that many.
        let small = sampler::weight(512, 512 * 1024);
        assert!(
            (1020..=1026).contains(&(small.count_milli / 1000)),
            "{}",
            small.count_milli
        );
        assert!(small.bytes > 500 * 1024 && small.bytes < 530 * 1024);
    }

    #[test]
    fn the_sampler_is_not_busy_outside_a_sample() {
        assert!(!sampler::busy());
    }
}
