//! Measuring with [`Tracking`](crate::Tracking): [`AllocationTracker`], [`MemoryProfiler`], [`Snapshot`] and
//! [`MemoryBudget`].

use std::{
    fmt,
    time::{Duration, Instant},
};

use crate::{
    AllocError,
    tracking::{self, AllocStats},
};

/// Whose allocations a measurement counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every thread's ([`tracking::stats`]).
    Process,
    /// The calling thread's only ([`tracking::thread_stats`]); exact whatever other threads do.
    Thread,
}

impl Scope {
    fn read(self) -> AllocStats {
        match self {
            Scope::Process => tracking::stats(),
            Scope::Thread => tracking::thread_stats(),
        }
    }
}

/// Counts at one moment, from [`MemoryProfiler::snapshot`] (process),
/// [`MemoryProfiler::thread_snapshot`] or [`Snapshot::now`].
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    scope: Scope,
    stats: Option<AllocStats>,
    at: Instant,
}

impl Snapshot {
    /// The counts of `scope` now.
    pub fn now(scope: Scope) -> Snapshot {
        Snapshot {
            scope,
            stats: tracking::is_installed().then(|| scope.read()),
            at: Instant::now(),
        }
    }

    /// The counts, or `None` when [`Tracking`](crate::Tracking) is not the global allocator.
    pub fn stats(&self) -> Option<AllocStats> {
        self.stats
    }

    /// Whose allocations it counts.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// What happened between `earlier` and this snapshot.
    pub fn diff(&self, earlier: &Snapshot) -> SnapshotDiff {
        SnapshotDiff {
            stats: match (self.stats, earlier.stats) {
                (Some(now), Some(then)) => Some(now.since(&then)),
                _ => None,
            },
            elapsed: self.at.saturating_duration_since(earlier.at),
        }
    }
}

/// Allocations and time between two [`Snapshot`]s.
///
/// Displays in one line: `Δ Allocations: +1500, Δ Bytes: +245760 (+0.23 MB), Duration: 123.456ms`, where
/// Δ Allocations counts allocation calls (reallocations included) and Δ Bytes is the change of live heap
/// bytes (negative when more was freed than allocated).
#[derive(Debug, Clone, Copy)]
pub struct SnapshotDiff {
    /// The counts in between, or `None` when they are unknown (`Tracking` not installed).
    pub stats: Option<AllocStats>,
    /// Wall-clock time in between.
    pub elapsed: Duration,
}

impl fmt::Display for SnapshotDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stats {
            Some(s) => write!(
                f,
                "Δ Allocations: {:+}, Δ Bytes: {:+} ({:+.2} MB)",
                s.allocation_calls(),
                s.current_bytes,
                s.current_bytes as f64 / MB
            )?,
            None => f.write_str(
                "Δ Allocations: unknown, Δ Bytes: unknown (Tracking is not the global allocator)",
            )?,
        }
        write!(f, ", Duration: {:.3?}", self.elapsed)
    }
}

const MB: f64 = 1024.0 * 1024.0;

/// The process's figures, from [`MemoryProfiler::summary`]; displays them in one line.
#[derive(Debug, Clone, Copy)]
pub struct MemorySummary {
    /// The counts, or `None` when [`Tracking`](crate::Tracking) is not the global allocator.
    pub stats: Option<AllocStats>,
}

impl fmt::Display for MemorySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stats {
            Some(s) => write!(
                f,
                "Allocations: {}, Deallocations: {}, Reallocations: {}, Bytes allocated: {} ({:.2} MB), \
                 Current: {} bytes ({:.2} MB), Peak: {} bytes ({:.2} MB)",
                s.allocations,
                s.deallocations,
                s.reallocations,
                s.bytes_allocated,
                s.bytes_allocated as f64 / MB,
                s.current_bytes,
                s.current_bytes as f64 / MB,
                s.peak_bytes,
                s.peak_bytes as f64 / MB
            ),
            None => f.write_str("Allocations: unknown (Tracking is not the global allocator)"),
        }
    }
}

/// Snapshots, profiles and a summary of allocation counts (all need [`Tracking`](crate::Tracking) as the
/// global allocator for their counts; without it they say `unknown`).
///
/// ```
/// use flowmem_alloc::{MemoryProfiler, Scope};
///
/// // Prints `[sum] Δ Allocations: ..., Δ Bytes: ..., Duration: ...` to standard error.
/// let sum = MemoryProfiler::profile("sum", || (0..10u64).sum::<u64>());
/// assert_eq!(sum, 45);
///
/// let before = MemoryProfiler::snapshot();
/// let v = vec![0u8; 1024];
/// let diff = MemoryProfiler::snapshot().diff(&before);
/// // `unknown` here: this doctest does not install `Tracking` as its global allocator.
/// assert!(diff.to_string().starts_with("Δ Allocations: unknown"));
///
/// let (len, diff) = MemoryProfiler::measure(Scope::Thread, || v.len());
/// assert_eq!(len, 1024);
/// assert!(diff.stats.is_none());
/// println!("{}", MemoryProfiler::summary());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MemoryProfiler;

impl MemoryProfiler {
    /// The process's counts now.
    pub fn snapshot() -> Snapshot {
        Snapshot::now(Scope::Process)
    }

    /// The calling thread's counts now (exact whatever other threads do).
    pub fn thread_snapshot() -> Snapshot {
        Snapshot::now(Scope::Thread)
    }

    /// Runs `f`, prints `[name] ` and what it allocated and how long it took (the process's counts, see
    /// [`SnapshotDiff`]'s form) to standard error, and returns `f`'s result.
    pub fn profile<R>(name: &str, f: impl FnOnce() -> R) -> R {
        let (result, diff) = MemoryProfiler::measure(Scope::Process, f);
        eprintln!("[{name}] {diff}");
        result
    }

    /// [`profile`](MemoryProfiler::profile) for async code: awaits the future `f` makes, then prints its
    /// line. The counts are the process's (a task may move between threads), so other tasks' allocations
    /// meanwhile count too.
    pub async fn profile_async<F, Fut>(name: &str, f: F) -> Fut::Output
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future,
    {
        tracking::reset_peak();
        let before = MemoryProfiler::snapshot();
        let result = f().await;
        let diff = MemoryProfiler::snapshot().diff(&before);
        eprintln!("[{name}] {diff}");
        result
    }

    /// Runs `f` and returns its result with what it allocated in `scope` and how long it took, printing
    /// nothing. The peak in the result is the peak reached while `f` ran.
    pub fn measure<R>(scope: Scope, f: impl FnOnce() -> R) -> (R, SnapshotDiff) {
        tracking::reset_peak();
        let before = Snapshot::now(scope);
        let result = f();
        let after = Snapshot::now(scope);
        (result, after.diff(&before))
    }

    /// The process's figures now: allocations, frees, bytes, live and peak bytes.
    pub fn summary() -> MemorySummary {
        MemorySummary {
            stats: tracking::is_installed().then(tracking::stats),
        }
    }
}

/// A scoped measurement: counts the allocations from [`new`](AllocationTracker::new) to
/// [`stop`](AllocationTracker::stop) (or drop) and prints one line to standard error:
///
/// `[name] Allocations: 150, Bytes: 24576 (0.02 MB), Duration: 1.234ms`
///
/// When [`Tracking`](crate::Tracking) is not the global allocator the counts print as `unknown`.
///
/// ```
/// use flowmem_alloc::AllocationTracker;
///
/// let tracker = AllocationTracker::new("parse").quiet();
/// let words: Vec<String> = "a b c".split(' ').map(String::from).collect();
/// let report = tracker.stop();
/// assert_eq!(words.len(), 3);
/// assert!(report.to_string().starts_with("[parse] Allocations: "));
/// ```
#[derive(Debug)]
pub struct AllocationTracker {
    name: String,
    start: Snapshot,
    quiet: bool,
    stopped: bool,
}

/// The result of an [`AllocationTracker`].
#[derive(Debug, Clone)]
pub struct TrackerReport {
    /// The tracker's name.
    pub name: String,
    /// Allocations and time while the tracker ran.
    pub diff: SnapshotDiff,
}

impl fmt::Display for TrackerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] ", self.name)?;
        match self.diff.stats {
            Some(s) => write!(
                f,
                "Allocations: {}, Bytes: {} ({:.2} MB)",
                s.allocation_calls(),
                s.bytes_allocated,
                s.bytes_allocated as f64 / (1024.0 * 1024.0)
            )?,
            None => f.write_str(
                "Allocations: unknown, Bytes: unknown (Tracking is not the global allocator)",
            )?,
        }
        write!(f, ", Duration: {:.3?}", self.diff.elapsed)
    }
}

impl AllocationTracker {
    /// Starts counting the whole process's allocations.
    pub fn new(name: impl Into<String>) -> AllocationTracker {
        AllocationTracker::with_scope(name, Scope::Process)
    }

    /// Starts counting allocations in `scope`.
    pub fn with_scope(name: impl Into<String>, scope: Scope) -> AllocationTracker {
        let name = name.into();
        AllocationTracker {
            name,
            start: Snapshot::now(scope),
            quiet: false,
            stopped: false,
        }
    }

    /// Prints nothing on stop or drop; the report is still returned by [`stop`](AllocationTracker::stop).
    pub fn quiet(mut self) -> AllocationTracker {
        self.quiet = true;
        self
    }

    /// Stops counting, prints the report (unless quiet) and returns it.
    pub fn stop(mut self) -> TrackerReport {
        self.finish()
    }

    fn finish(&mut self) -> TrackerReport {
        self.stopped = true;
        let now = Snapshot::now(self.start.scope);
        let report = TrackerReport {
            name: std::mem::take(&mut self.name),
            diff: now.diff(&self.start),
        };
        if !self.quiet {
            eprintln!("{report}");
        }
        report
    }
}

impl Drop for AllocationTracker {
    fn drop(&mut self) {
        if !self.stopped {
            self.finish();
        }
    }
}

/// A limit on the process's live heap bytes, checked when you ask.
///
/// Needs [`Tracking`](crate::Tracking) as the global allocator: [`new`](MemoryBudget::new) refuses otherwise,
/// rather than hand out a budget that could never fail.
///
/// ```
/// use flowmem_alloc::{AllocError, MemoryBudget};
///
/// // This doctest does not install `Tracking`, so there is nothing to check against.
/// assert_eq!(MemoryBudget::new(1 << 30).unwrap_err(), AllocError::TrackingNotInstalled);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct MemoryBudget {
    limit: u64,
}

/// The error of [`MemoryBudget::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memory budget exceeded: {current} live heap bytes, budget {limit}")]
pub struct BudgetExceeded {
    /// The budget.
    pub limit: u64,
    /// Live heap bytes at the check.
    pub current: u64,
}

impl MemoryBudget {
    /// A budget of `limit` live heap bytes for the whole process.
    pub fn new(limit: u64) -> Result<MemoryBudget, AllocError> {
        if !tracking::is_installed() {
            return Err(AllocError::TrackingNotInstalled);
        }
        Ok(MemoryBudget { limit })
    }

    /// The budget in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Live heap bytes now.
    pub fn current(&self) -> u64 {
        tracking::stats().current_bytes.max(0) as u64
    }

    /// Bytes left before the budget is exceeded (0 when it is).
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.current())
    }

    /// `Ok` while live heap bytes are within the budget.
    pub fn check(&self) -> Result<(), BudgetExceeded> {
        let current = self.current();
        if current > self.limit {
            return Err(BudgetExceeded {
                limit: self.limit,
                current,
            });
        }
        Ok(())
    }
}
