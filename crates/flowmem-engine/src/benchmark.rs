//! `Benchmark`: time a workflow's runs and count their allocations.

use std::{
    fmt,
    time::{Duration, Instant},
};

use flowmem_alloc::tracking;

use crate::{Executor, RunOptions, RunStatus, Workflow};

/// Runs a workflow many times and reports time per run (mean, median, 99th percentile) and, when the
/// binary's global allocator is `flowmem_alloc::Tracking`, heap allocations and bytes per run ("unknown"
/// otherwise: nothing else can count them).
///
/// ```
/// use flowmem_engine::{ActionError, Benchmark, NodeCtx, Workflow};
///
/// let mut builder = Workflow::builder("tiny");
/// builder.node("a", |_: &mut NodeCtx<'_>| Ok::<(), ActionError>(()));
/// let workflow = builder.build()?;
/// let report = Benchmark::new(&workflow).iterations(50).run();
/// assert_eq!(report.iterations, 50);
/// assert!(report.p50 <= report.p99);
/// println!("{report}"); // allocations are "unknown" here: no Tracking allocator in doctests
/// # Ok::<(), flowmem_engine::DefinitionError>(())
/// ```
#[derive(Debug)]
pub struct Benchmark<'a> {
    workflow: &'a Workflow,
    executor: Option<&'a Executor>,
    iterations: u64,
    warmup: Option<u64>,
    options: RunOptions,
}

/// What a [`Benchmark`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkReport {
    /// The workflow's name.
    pub workflow: String,
    /// Its number of nodes.
    pub nodes: usize,
    /// Measured runs.
    pub iterations: u64,
    /// Runs that did not complete (failed or cancelled).
    pub failed_runs: u64,
    /// Mean time per run.
    pub mean: Duration,
    /// Median time per run.
    pub p50: Duration,
    /// 99th percentile of the time per run.
    pub p99: Duration,
    /// Fastest run.
    pub min: Duration,
    /// Slowest run.
    pub max: Duration,
    /// Heap allocations per run (process-wide, during the measured runs), if a `Tracking` allocator is
    /// installed.
    pub allocations_per_run: Option<f64>,
    /// Heap bytes allocated per run, if a `Tracking` allocator is installed.
    pub bytes_per_run: Option<f64>,
}

impl<'a> Benchmark<'a> {
    /// A benchmark of `workflow`: 100 runs after 10 warm-up runs, on an executor of its own (one worker per
    /// CPU) unless [`executor`](Self::executor) gives one.
    pub fn new(workflow: &'a Workflow) -> Self {
        Benchmark {
            workflow,
            executor: None,
            iterations: 100,
            warmup: None,
            options: RunOptions::default(),
        }
    }

    /// The number of measured runs (at least 1).
    pub fn iterations(mut self, n: u64) -> Self {
        self.iterations = n.max(1);
        self
    }

    /// The number of unmeasured runs first (default: a tenth of the iterations, at least 1, at most 100).
    pub fn warmup(mut self, n: u64) -> Self {
        self.warmup = Some(n);
        self
    }

    /// Runs on `executor` (its workers and memory options).
    pub fn executor(mut self, executor: &'a Executor) -> Self {
        self.executor = Some(executor);
        self
    }

    /// The options of each run.
    pub fn run_options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs it.
    pub fn run(self) -> BenchmarkReport {
        let own;
        let executor = match self.executor {
            Some(e) => e,
            None => {
                own = Executor::new(0);
                &own
            }
        };
        let warmup = self
            .warmup
            .unwrap_or_else(|| (self.iterations / 10).clamp(1, 100));
        for _ in 0..warmup {
            executor
                .submit_with(self.workflow, self.options.clone())
                .wait_status();
        }
        let mut times = Vec::with_capacity(self.iterations as usize);
        let mut failed_runs = 0;
        let tracked = tracking::is_installed();
        let before = tracking::stats();
        for _ in 0..self.iterations {
            let start = Instant::now();
            let status = executor
                .submit_with(self.workflow, self.options.clone())
                .wait_status();
            // Writes into reserved capacity: no allocation inside the measured span.
            times.push(start.elapsed());
            failed_runs += u64::from(status != RunStatus::Completed);
        }
        let after = tracking::stats();
        let per_run = |v: u64| v as f64 / self.iterations as f64;
        let (allocations_per_run, bytes_per_run) = if tracked {
            (
                Some(per_run(after.allocations - before.allocations)),
                Some(per_run(after.bytes_allocated - before.bytes_allocated)),
            )
        } else {
            (None, None)
        };
        times.sort_unstable();
        let total: Duration = times.iter().sum();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        BenchmarkReport {
            workflow: self.workflow.name().to_string(),
            nodes: self.workflow.len(),
            iterations: self.iterations,
            failed_runs,
            mean: total / self.iterations as u32,
            p50: at(0.5),
            p99: at(0.99),
            min: times[0],
            max: times[times.len() - 1],
            allocations_per_run,
            bytes_per_run,
        }
    }
}

impl BenchmarkReport {
    /// Mean time per node.
    pub fn per_node(&self) -> Duration {
        self.mean / self.nodes.max(1) as u32
    }
}

impl fmt::Display for BenchmarkReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known = |v: Option<f64>| v.map_or("unknown".to_string(), |v| format!("{v:.1}"));
        write!(
            f,
            "[{}] {} runs of {} nodes: mean {:?} ({:?} per node), p50 {:?}, p99 {:?}; allocations per run: {}, bytes per run: {}",
            self.workflow,
            self.iterations,
            self.nodes,
            self.mean,
            self.per_node(),
            self.p50,
            self.p99,
            known(self.allocations_per_run),
            known(self.bytes_per_run),
        )?;
        if self.failed_runs > 0 {
            write!(f, "; {} runs did not complete", self.failed_runs)?;
        }
        Ok(())
    }
}
